//! PostgreSQL for end-to-end suites: a fresh database per test, made from
//! `DATABASE_URL`, dropped afterwards.
//!
//! Must never: skip silently. Without `DATABASE_URL` or with PostgreSQL down,
//! a suite fails when `CI=true` and otherwise says loudly on stderr that it
//! skipped.

use std::process::Command;

/// A fresh, empty database; dropped (with `dropdb`-equivalent SQL via psql)
/// when this value is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Connection URL of the fresh database.
    pub url: String,
}

impl TestDatabase {
    /// Creates a database, or returns `None` (outside CI) when PostgreSQL is
    /// not available. Panics in CI, where PostgreSQL must be there.
    pub fn create(suite: &str) -> Option<TestDatabase> {
        let in_ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            assert!(
                !in_ci,
                "CI=true but DATABASE_URL is not set: the PostgreSQL suite {suite} must run in CI"
            );
            eprintln!("SKIPPED {suite}: DATABASE_URL is not set (PostgreSQL suites need it)");
            return None;
        };
        let name = format!("umbra_e2e_{}", random_suffix());
        let created = Command::new("psql")
            .arg(&admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-qc"])
            .arg(format!("CREATE DATABASE {name}"))
            .output();
        match created {
            Ok(out) if out.status.success() => {}
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    !in_ci,
                    "CI=true but PostgreSQL at DATABASE_URL is unreachable: {why}"
                );
                eprintln!("SKIPPED {suite}: PostgreSQL unreachable: {why}");
                return None;
            }
        }
        let url = replace_database(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// `postgres://user@host:port/db?opts` with `db` replaced.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

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
}
