//! sqlx errors as the store port's errors, for both dialects: the one place that tells
//! data the store refuses for good from a store that is away for now.

use moodwire_core::ports::StoreError;
use sqlx::error::ErrorKind;

/// The SQL dialect an error came from: their error codes differ.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

/// Maps a sqlx error to [`StoreError`], with `context` saying what was being done.
pub(crate) fn store_error(
    dialect: Dialect,
    context: &str,
) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| {
        let message = format!("{context}: {e}");
        if refuses_the_data(dialect, &e) {
            StoreError::Rejected(message)
        } else {
            StoreError::Unavailable(message)
        }
    }
}

/// Whether the same statement with the same data fails again, whatever the retry.
/// Everything else (connections, timeouts, locks, a full disk, a schema not there
/// yet) is taken as transient: retried, never set aside.
fn refuses_the_data(dialect: Dialect, e: &sqlx::Error) -> bool {
    match e {
        // A value the driver cannot put on the wire.
        sqlx::Error::Encode(_) => true,
        sqlx::Error::Database(db) => {
            let constraint = matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            );
            constraint
                || db
                    .code()
                    .is_some_and(|code| refused_code(dialect, code.as_ref()))
        }
        _ => false,
    }
}

fn refused_code(dialect: Dialect, code: &str) -> bool {
    match dialect {
        // SQLSTATE classes: 22 data exception (e.g. 22021 "invalid byte sequence",
        // 22001 "value too long"), 23 integrity constraint, 54 program limit exceeded
        // (e.g. an index row too large).
        Dialect::Postgres => matches!(code.get(..2), Some("22" | "23" | "54")),
        // Primary result codes: 18 TOOBIG, 19 CONSTRAINT, 20 MISMATCH, 25 RANGE.
        Dialect::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_are_permanent_and_the_rest_transient() {
        assert!(refused_code(Dialect::Postgres, "22021"));
        assert!(refused_code(Dialect::Postgres, "23505"));
        assert!(refused_code(Dialect::Postgres, "54000"));
        for transient in ["08006", "40P01", "53300", "57P01", "42P01"] {
            assert!(!refused_code(Dialect::Postgres, transient), "{transient}");
        }
        assert!(refused_code(Dialect::Sqlite, "18"));
        assert!(
            refused_code(Dialect::Sqlite, "2067"),
            "SQLITE_CONSTRAINT_UNIQUE"
        );
        for transient in ["5", "13", "10", "1"] {
            assert!(!refused_code(Dialect::Sqlite, transient), "{transient}");
        }
        let away = store_error(Dialect::Postgres, "saving")(sqlx::Error::PoolTimedOut);
        assert!(!away.is_permanent(), "{away}");
    }
}
