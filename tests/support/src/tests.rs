//! Tests of the PostgreSQL rule. What a skip prints can only be seen from
//! outside the process (the exit-hook count is written after the harness is
//! done), so most tests run this test binary again as a child, restricted
//! to [`probe`], with a controlled environment.
//!
//! Must never: depend on the developer's environment for the child: every
//! child gets `CI` and `DATABASE_URL` set or removed explicitly.

use std::process::{Command, Output};

use sqlx::Connection;

use super::*;

/// Set in a child to make [`probe`] do its work; unset, it does nothing.
const PROBE_VAR: &str = "UMBRA_TEST_SUPPORT_PROBE";

/// The child's body: both entry points, the sync one from inside a runtime
/// (where a `block_on` of the caller's runtime would panic).
#[tokio::test]
async fn probe() {
    if std::env::var(PROBE_VAR).is_err() {
        return;
    }
    let sync = PgTestDb::create_blocking("probe_sync");
    let asynchronous = PgTestDb::create("probe_async").await;
    for db in [sync, asynchronous].into_iter().flatten() {
        let _ = writeln!(std::io::stderr(), "CREATED {}", db.name());
    }
}

fn run_probe(ci: Option<&str>, database_url: Option<&str>, path: Option<&str>) -> Output {
    let mut child = Command::new(std::env::current_exe().expect("own test binary"));
    child
        .args(["--exact", "tests::probe", "--test-threads=1"])
        .env(PROBE_VAR, "1")
        .env_remove(CI_VAR)
        .env_remove(DATABASE_URL_VAR);
    if let Some(ci) = ci {
        child.env(CI_VAR, ci);
    }
    if let Some(url) = database_url {
        child.env(DATABASE_URL_VAR, url);
    }
    if let Some(path) = path {
        child.env("PATH", path);
    }
    child.output().expect("run the probe child")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ci_means_exactly_true_or_1() {
    assert!(ci_value_means_ci(Some("true")));
    assert!(ci_value_means_ci(Some("1")));
    for not_ci in [
        None,
        Some(""),
        Some("false"),
        Some("0"),
        Some("yes"),
        Some("TRUE "),
    ] {
        assert!(!ci_value_means_ci(not_ci), "{not_ci:?}");
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_database("postgres://u@h/test?sslmode=disable", "y"),
        "postgres://u@h/y?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://u@h", "z"), "postgres://u@h/z");
}

#[test]
fn outside_ci_an_unconfigured_postgres_is_a_printed_and_counted_skip() {
    let out = run_probe(None, None, None);
    let err = stderr(&out);
    assert!(out.status.success(), "a skip is not a failure: {err}");
    assert!(
        err.contains("SKIPPED: probe_sync: DATABASE_URL is not set\n"),
        "{err}"
    );
    assert!(
        err.contains("SKIPPED: probe_async: DATABASE_URL is not set\n"),
        "{err}"
    );
    assert!(
        err.contains("SKIPPED: 2 PostgreSQL tests did not run in this test binary"),
        "{err}"
    );
}

#[test]
fn outside_ci_an_unreachable_postgres_is_a_skip() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let out = run_probe(
        Some("false"),
        Some("postgres://postgres@127.0.0.1:1/test"),
        None,
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("SKIPPED: probe_sync: PostgreSQL is unreachable"),
        "{err}"
    );
    assert!(
        err.contains("SKIPPED: 2 PostgreSQL tests did not run"),
        "{err}"
    );
}

#[test]
fn in_ci_an_unconfigured_or_unreachable_postgres_fails_and_says_how_to_start_it() {
    for (ci, url) in [
        ("true", None),
        ("1", None),
        ("true", Some("postgres://postgres@127.0.0.1:1/test")),
    ] {
        let out = run_probe(Some(ci), url, None);
        // libtest reports a failed test's panic on stdout.
        let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!out.status.success(), "CI={ci} {url:?} passed: {err}");
        assert!(err.contains("PostgreSQL is required in CI"), "{err}");
        assert!(err.contains("pg_ctlcluster"), "{err}");
        assert!(!err.contains("SKIPPED"), "{err}");
    }
}

#[tokio::test]
async fn a_test_database_is_fresh_and_dropped_afterwards_without_psql() {
    // This test needs PostgreSQL itself, and obeys the rule it tests.
    let Some(witness) = PgTestDb::create("a_test_database_is_fresh_and_dropped").await else {
        return;
    };
    let mut conn = PgConnection::connect_with(&witness.connect_options())
        .await
        .expect("connect to the fresh database");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a fresh database is empty");

    // A child with no `psql` on its PATH still gets its databases, and
    // drops them when its test ends.
    let url = std::env::var(DATABASE_URL_VAR).expect("set, since the witness exists");
    let out = run_probe(Some("true"), Some(&url), Some("/nonexistent"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let created: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("CREATED "))
        .collect();
    assert_eq!(created.len(), 2, "{err}");
    for name in created {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "{name} was not dropped");
    }
    let _ = conn.close().await;
}
