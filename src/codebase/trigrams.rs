//! The byte trigrams PostgreSQL narrows a search with (`project_contents.trigrams`, a GIN
//! index answering `@>` exactly): every distinct three bytes of a file's text with ASCII
//! letters in lower case, as `b0 << 16 | b1 << 8 | b2`, none across a line break (a line
//! never holds one, so no query needs them). A text contains a query's bytes only if it
//! holds all of their trigrams. Written by hand: no crate computes this key, and it must
//! be the one migration 0013 computes in SQL for rows written before it.

/// The distinct trigrams of `text`, sorted.
pub fn of_text(text: &str) -> Vec<i32> {
    let mut trigrams = of_bytes(text.as_bytes());
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// The trigrams every text containing `bytes` (with ASCII letters in any case) holds.
pub fn of_bytes(bytes: &[u8]) -> Vec<i32> {
    bytes
        .windows(3)
        .filter(|w| !w.contains(&b'\n'))
        .map(|w| {
            let [a, b, c] = [w[0], w[1], w[2]].map(|byte| i32::from(byte.to_ascii_lowercase()));
            a << 16 | b << 8 | c
        })
        .collect()
}

/// PostgreSQL's text form of an `int[]`.
pub fn literal(trigrams: &[i32]) -> String {
    let items: Vec<String> = trigrams.iter().map(i32::to_string).collect();
    format!("{{{}}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_fold_ascii_letters_and_skip_line_breaks() {
        let abc = i32::from(b'a') << 16 | i32::from(b'b') << 8 | i32::from(b'c');
        assert_eq!(of_text("aBc\nABC"), vec![abc]);
        assert_eq!(of_text("ab"), Vec::<i32>::new());
        assert_eq!(of_text("é").len(), 0, "two bytes");
        assert_eq!(of_text("éa").len(), 1, "bytes, not characters");
        assert_eq!(literal(&[1, 20]), "{1,20}");
    }
}
