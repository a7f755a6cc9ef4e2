//! The one-time id marks (migration 0009, `store/one_time.rs`), on both
//! backends: what the migration gives a database that already holds
//! one-time prekeys.

use super::kem_keys::kem;
use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn the_marks_migration_starts_at_the_highest_stored_id(db: &TestDb) {
    // A database as a relay before migration 0009 left it: X25519 one-time
    // prekeys 3 and 7 and KEM one-time prekey 5 stored (lower ids claimed).
    db.migrate_before(9).await;
    let alice = account_id(b'a');
    let a = hex(alice.as_bytes());
    let ident = hex(&identity(1));
    let x = |id: u32| hex(key(id).as_bytes());
    let k = kem(5, 0);
    let (kem_key, kem_sig) = (hex(&k.key), hex(&k.signature));
    let sqlite = [
        format!("INSERT INTO accounts VALUES (x'{a}', 'alice', x'00')"),
        format!("INSERT INTO identity_keys VALUES (x'{a}', 1, x'{ident}')"),
        format!("INSERT INTO one_time_prekeys VALUES (x'{a}', 1, 3, x'{}')", x(3)),
        format!("INSERT INTO one_time_prekeys VALUES (x'{a}', 1, 7, x'{}')", x(7)),
        format!(
            "INSERT INTO kem_one_time_prekeys VALUES (x'{a}', 1, 5, {}, x'{kem_key}', x'{kem_sig}')",
            k.created_at
        ),
    ];
    let postgres = [
        format!("INSERT INTO accounts VALUES ('\\x{a}', 'alice', '\\x00')"),
        format!("INSERT INTO identity_keys VALUES ('\\x{a}', 1, '\\x{ident}')"),
        format!("INSERT INTO one_time_prekeys VALUES ('\\x{a}', 1, 3, '\\x{}')", x(3)),
        format!("INSERT INTO one_time_prekeys VALUES ('\\x{a}', 1, 7, '\\x{}')", x(7)),
        format!(
            "INSERT INTO kem_one_time_prekeys VALUES ('\\x{a}', 1, 5, {}, '\\x{kem_key}', '\\x{kem_sig}')",
            k.created_at
        ),
    ];
    db.execute_raw(
        &sqlite.iter().map(String::as_str).collect::<Vec<_>>(),
        &postgres.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    let store = db.open().await;
    let device = Address::primary(alice);
    // 6 is below the highest stored id: claimed before, never again; 7 a
    // retry; 8 new.
    let keys = [one_time(6), one_time(7), one_time(8)];
    assert_eq!(store.add_one_time_prekeys(device, &keys).await.unwrap(), 3);
    let stock = store
        .put_kem_prekeys(
            device,
            &identity(1),
            None,
            &[kem(4, 0), kem(5, 0), kem(6, 0)],
        )
        .await
        .unwrap();
    assert_eq!(stock.one_time, 2, "4 is below the stored 5");

    store
        .put_keys(device, &identity(1), &signed(1), None)
        .await
        .unwrap();
    let (mut x25519, mut kems) = (Vec::new(), Vec::new());
    while let Some(hybrid) = store.claim_hybrid_bundle(device).await.unwrap() {
        if hybrid.bundle.one_time_prekey.is_none() && hybrid.kem_one_time.is_none() {
            break;
        }
        x25519.extend(hybrid.bundle.one_time_prekey.map(|k| k.id));
        kems.extend(hybrid.kem_one_time.map(|k| k.id));
    }
    assert_eq!(x25519, vec![3, 7, 8]);
    assert_eq!(kems, vec![5, 6]);
}
