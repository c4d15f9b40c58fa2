//! Which parts of which files a search reads: each file's text is cut into blocks of
//! whole lines (about [`BLOCK_BYTES`]), and each block keeps a Bloom filter of its byte
//! trigrams (three bytes, ASCII letters in lower case, none across a line break). A line
//! that matches a query holds all of the query's trigrams, and a line lies in one block,
//! so only blocks whose filter holds them all can hold a match: a search reads those and
//! no others (zoekt narrows with positional trigrams for the same reason: a large file
//! holds every trigram of a query somewhere, without holding the query).
//!
//! Filters are computed when a file is indexed and stored with its text
//! (`project_contents.grams`), and kept in memory with the live generation
//! (`codebase::snapshot`). Written by hand: no crate builds a per-block filter over line
//! boundaries that a search can test without reading the text.

use std::ops::Range;

/// A block ends at the first line break at or past this many bytes from its start.
pub const BLOCK_BYTES: usize = 8 * 1024;
/// Filter bits per distinct trigram, and bits set per trigram: a trigram a block lacks
/// passes its filter about (1 - e^(-2/8))² ≈ 5% of the time.
const BITS_PER_TRIGRAM: usize = 8;
/// The encoding's version, its first byte: a filter of another version is not used (the
/// file's text is then read whole, or its filter computed again).
const VERSION: u8 = 1;

/// One block of a file: where it starts and which trigrams it may hold.
#[derive(Debug, PartialEq)]
struct Block {
    /// Byte offset of its first line.
    start: u32,
    /// Line breaks before it: its first line is line `line + 1`.
    line: u32,
    bits: Box<[u64]>,
}

/// A file's blocks, in order.
#[derive(Debug, PartialEq)]
pub struct Filter {
    blocks: Vec<Block>,
    /// The text's length in bytes (the last block's end).
    len: u32,
}

/// A run of a file's text to read: its bytes, and the number of its first line.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub bytes: Range<usize>,
    pub first_line: usize,
}

/// A query's trigrams, each as its two bit positions' hash.
pub struct Query {
    hashes: Vec<u64>,
}

impl Query {
    /// The trigrams of `bytes` (what every text containing them holds, with ASCII letters
    /// in any case); `None` when there are none (fewer than three bytes on a line).
    pub fn new(bytes: &[u8]) -> Option<Query> {
        let mut hashes: Vec<u64> = of_bytes(bytes).map(hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        (!hashes.is_empty()).then_some(Query { hashes })
    }
}

/// The trigrams of `bytes` not across a line break, ASCII letters lowercased, as
/// `b0 << 16 | b1 << 8 | b2`.
fn of_bytes(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.windows(3).filter(|w| !w.contains(&b'\n')).map(|w| {
        let [a, b, c] = [w[0], w[1], w[2]].map(|byte| u32::from(byte.to_ascii_lowercase()));
        a << 16 | b << 8 | c
    })
}

/// A trigram's bits come from a hash of it, mixed so that both halves vary with all of
/// its bytes.
fn hash(trigram: u32) -> u64 {
    let h = u64::from(trigram).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// The two bits of a trigram's hash in a filter of `len` bits.
fn positions(hash: u64, len: usize) -> [usize; 2] {
    let len = len as u64;
    [
        (((hash >> 32) * len) >> 32) as usize,
        (((hash & 0xFFFF_FFFF) * len) >> 32) as usize,
    ]
}

impl Block {
    fn new(text: &[u8], start: usize, line: usize) -> Block {
        let mut hashes: Vec<u64> = of_bytes(text).map(hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let words = (hashes.len() * BITS_PER_TRIGRAM).div_ceil(64).max(1);
        let mut bits = vec![0u64; words].into_boxed_slice();
        for hash in hashes {
            for at in positions(hash, words * 64) {
                bits[at / 64] |= 1 << (at % 64);
            }
        }
        Block {
            start: start as u32,
            line: line as u32,
            bits,
        }
    }

    fn may_hold(&self, query: &Query) -> bool {
        let len = self.bits.len() * 64;
        query.hashes.iter().all(|&hash| {
            positions(hash, len)
                .into_iter()
                .all(|at| self.bits[at / 64] & (1 << (at % 64)) != 0)
        })
    }
}

impl Filter {
    /// The filter of a file's text.
    pub fn of_text(text: &str) -> Filter {
        let bytes = text.as_bytes();
        let (mut blocks, mut start, mut line) = (Vec::new(), 0, 0);
        while start < bytes.len() {
            let end = match bytes.get(start + BLOCK_BYTES..) {
                Some(rest) => {
                    memchr::memchr(b'\n', rest).map_or(bytes.len(), |i| start + BLOCK_BYTES + i + 1)
                }
                None => bytes.len(),
            };
            blocks.push(Block::new(&bytes[start..end], start, line));
            line += memchr::memchr_iter(b'\n', &bytes[start..end]).count();
            start = end;
        }
        Filter {
            blocks,
            len: bytes.len() as u32,
        }
    }

    /// The runs of the text that may hold `query`'s lines (adjacent blocks joined), in
    /// order.
    pub fn parts(&self, query: &Query) -> Vec<Part> {
        let mut parts: Vec<Part> = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            if !block.may_hold(query) {
                continue;
            }
            let end = self.blocks.get(i + 1).map_or(self.len, |next| next.start) as usize;
            match parts.last_mut() {
                Some(last) if last.bytes.end == block.start as usize => last.bytes.end = end,
                _ => parts.push(Part {
                    bytes: block.start as usize..end,
                    first_line: block.line as usize + 1,
                }),
            }
        }
        parts
    }

    /// Roughly what it takes in memory.
    pub fn bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.bits.len() * 8 + 40)
            .sum::<usize>()
            + 32
    }

    /// The stored form: the version, the text's length, then each block's start, line,
    /// word count and words (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes());
        out.push(VERSION);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for block in &self.blocks {
            out.extend_from_slice(&block.start.to_le_bytes());
            out.extend_from_slice(&block.line.to_le_bytes());
            out.extend_from_slice(&(block.bits.len() as u32).to_le_bytes());
            for word in block.bits.iter() {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// The filter stored as `bytes`; `None` when they are not one of this version.
    pub fn decode(bytes: &[u8]) -> Option<Filter> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut rest = Stored(rest);
        let len = rest.u32()?;
        let count = rest.u32()?;
        let mut blocks = Vec::new();
        for _ in 0..count {
            let (start, line, words) = (rest.u32()?, rest.u32()?, rest.u32()?);
            let bits = (0..words)
                .map(|_| rest.u64())
                .collect::<Option<Box<[u64]>>>()?;
            if bits.is_empty() || start > len {
                return None;
            }
            blocks.push(Block { start, line, bits });
        }
        let ordered = blocks.windows(2).all(|w| w[0].start < w[1].start);
        (rest.0.is_empty() && ordered).then_some(Filter { blocks, len })
    }
}

/// What is left of a stored filter to decode.
struct Stored<'a>(&'a [u8]);

impl Stored<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (word, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*word))
    }

    fn u64(&mut self) -> Option<u64> {
        let (word, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Query {
        Query::new(q.as_bytes()).unwrap()
    }

    #[test]
    fn a_block_holds_its_lines_trigrams_in_any_ascii_case() {
        let text = "fn Total() {}\nlet x = 1;\n";
        let filter = Filter::of_text(text);
        assert_eq!(
            filter.parts(&query("TOTAL")),
            [Part {
                bytes: 0..text.len(),
                first_line: 1
            }]
        );
        assert!(Query::new(b"ab").is_none());
        assert!(
            Query::new(b"a\nbc").is_none(),
            "no trigram across a line break"
        );
        assert!(Query::new("é".as_bytes()).is_none(), "two bytes");
    }

    #[test]
    fn only_the_blocks_that_may_hold_a_query_are_read() {
        // Blocks of whole lines: the needle's line is in one block, found at its line.
        let filler = "let filler_value = compute(1, 2, 3);\n".repeat(600);
        let text = format!("{filler}fn needle_here() {{}}\n{filler}");
        let filter = Filter::of_text(&text);
        assert!(filter.blocks.len() > 4);
        let parts = filter.parts(&query("needle_here"));
        assert_eq!(parts.len(), 1, "{parts:?}");
        let part = &parts[0];
        let run = &text[part.bytes.clone()];
        assert!(text[..part.bytes.start].ends_with('\n'));
        let at = run.find("needle_here").unwrap();
        let line = part.first_line + run[..at].matches('\n').count();
        assert_eq!(line, 601);
        // Every block may hold what all of them hold: one part, the whole text.
        assert_eq!(
            filter.parts(&query("filler_value")),
            [Part {
                bytes: 0..text.len(),
                first_line: 1
            }]
        );
        assert_eq!(Filter::of_text("").parts(&query("abc")), []);
    }

    #[test]
    fn the_stored_form_reads_back_and_a_damaged_one_does_not() {
        let text = "a line of text\n".repeat(2_000);
        let filter = Filter::of_text(&text);
        let stored = filter.encode();
        assert_eq!(Filter::decode(&stored), Some(Filter::of_text(&text)));
        assert_eq!(Filter::decode(&stored[..stored.len() - 1]), None);
        let mut other = stored.clone();
        other[0] = VERSION + 1;
        assert_eq!(Filter::decode(&other), None);
        assert_eq!(Filter::decode(&[]), None);
    }
}
