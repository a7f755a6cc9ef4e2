//! Placeholder lists for the batched queue statements (`queue.rs`): one
//! statement per step of a batch instead of one per message or recipient.
//!
//! Why: every statement is a round trip to the database (on SQLite, to
//! sqlx's worker thread: two thread wake-ups each), and those round trips,
//! not SQL execution, were most of the relay's CPU per message
//! (docs/BENCHMARKS.md, "Relay throughput"). sqlx prepares each distinct
//! statement text once per connection and caches it, so lists come in few
//! sizes: multi-row inserts are split into power-of-two chunks, and IN lists
//! are padded to a power of two by repeating their last value (a repeated
//! value changes nothing in an IN list).
//!
//! Must never: produce a list longer than the limits below (SQLite takes at
//! most 32 766 parameters, PostgreSQL 65 535), or an empty one.

/// Most rows of one multi-row INSERT (at 6 columns, 384 parameters).
pub(crate) const MAX_ROWS: usize = 64;

/// Most values of one IN list.
pub(crate) const MAX_IN: usize = 256;

/// `rows` tuples of `cols` placeholders, numbered from `$first`:
/// `($1, $2), ($3, $4)`.
pub(crate) fn tuples(first: usize, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for col in 0..cols {
            if col > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + row * cols + col).to_string());
        }
        out.push(')');
    }
    out
}

/// `$first, ..., $(first + n - 1)`.
pub(crate) fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chunk sizes for `n` rows: `MAX_ROWS` while more remain, then the binary
/// digits of the rest (37 -> 32, 4, 1), so at most 7 distinct texts.
pub(crate) fn row_chunks(mut n: usize) -> Vec<usize> {
    let mut chunks = Vec::new();
    while n >= MAX_ROWS {
        chunks.push(MAX_ROWS);
        n -= MAX_ROWS;
    }
    let mut bit = MAX_ROWS / 2;
    while bit > 0 {
        if n & bit != 0 {
            chunks.push(bit);
        }
        bit /= 2;
    }
    chunks
}

/// The padded length of an IN list of `n` values (1 <= n <= MAX_IN).
pub(crate) fn in_list_len(n: usize) -> usize {
    n.max(1).next_power_of_two().min(MAX_IN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_in_few_sizes() {
        for n in 0..300 {
            let chunks = row_chunks(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            assert!(chunks.iter().all(|c| c.is_power_of_two() && *c <= MAX_ROWS));
        }
        assert_eq!(row_chunks(37), vec![32, 4, 1]);
        assert_eq!(row_chunks(130), vec![64, 64, 2]);
    }

    #[test]
    fn placeholders_number_from_the_first() {
        assert_eq!(tuples(3, 2, 2), "($3, $4), ($5, $6)");
        assert_eq!(list(2, 3), "$2, $3, $4");
        assert_eq!(in_list_len(5), 8);
        assert_eq!(in_list_len(MAX_IN), MAX_IN);
    }
}
