//! Which parts of which files a search reads: each file's text is cut into blocks of
//! whole lines (about [`BLOCK_BYTES`]), and each block keeps a Bloom filter of its byte
//! trigrams (three bytes, ASCII letters in lower case, none across a line break). A line
//! that matches a query holds all of the query's trigrams, and a line lies in one block,
//! so only blocks whose filter holds them all can hold a match: a search reads those and
//! no others (zoekt narrows with positional trigrams for the same reason: a large file
//! holds every trigram of a query somewhere, without holding the query).
//!
//! Filters are computed when a file is indexed and stored with its text
//! (`project_contents.grams`). In memory, a generation's filters are kept bit-sliced
//! ([`Blocks`], BitFunnel's layout): for each of a filter's bits, one bit per block of the
//! generation. A query then ANDs two rows per trigram, a few KiB read in order, instead of
//! testing every block's filter (a cache miss each: 2 ms over 8,000 blocks). Written by
//! hand: no crate builds per-block filters over line boundaries and slices them.

use std::ops::Range;

/// A block ends at the first line break at or past this many bytes from its start.
pub const BLOCK_BYTES: usize = 8 * 1024;
/// Bits of a block's filter, two set per trigram: a block of code holds up to about
/// 2,500 distinct trigrams, so a trigram it lacks passes its filter at most about 20% of
/// the time, and a query of n trigrams about 0.2ⁿ (fewer trigrams, fewer false passes).
pub const BLOCK_BITS: usize = 8192;
const WORDS: usize = BLOCK_BITS / 64;
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
        let mut bits = vec![0u64; WORDS].into_boxed_slice();
        for trigram in of_bytes(text) {
            for at in positions(hash(trigram), BLOCK_BITS) {
                bits[at / 64] |= 1 << (at % 64);
            }
        }
        Block {
            start: start as u32,
            line: line as u32,
            bits,
        }
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
        let mut out = Vec::with_capacity(9 + self.blocks.len() * (12 + WORDS * 8));
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
            if bits.len() != WORDS || start > len {
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

/// Where one block of a generation's files is.
#[derive(Clone, Copy)]
struct Span {
    place: u32,
    start: u32,
    end: u32,
    line: u32,
}

/// A generation's filters, bit-sliced: row `b` holds bit `b` of every block's filter
/// (block `i` at bit `i % 64` of word `i / 64`).
pub struct Blocks {
    spans: Vec<Span>,
    rows: Vec<u64>,
    words_per_row: usize,
}

impl Blocks {
    /// The blocks of `filters`, the filter of each file by place.
    pub fn new<'a>(filters: impl Iterator<Item = (u32, &'a Filter)>) -> Blocks {
        let mut spans = Vec::new();
        let mut bits: Vec<&[u64]> = Vec::new();
        for (place, filter) in filters {
            for (i, block) in filter.blocks.iter().enumerate() {
                let end = filter
                    .blocks
                    .get(i + 1)
                    .map_or(filter.len, |next| next.start);
                spans.push(Span {
                    place,
                    start: block.start,
                    end,
                    line: block.line,
                });
                bits.push(&block.bits);
            }
        }
        let words_per_row = spans.len().div_ceil(64);
        let mut rows = vec![0u64; BLOCK_BITS * words_per_row];
        for (i, block) in bits.iter().enumerate() {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            for (w, &value) in block.iter().enumerate() {
                let mut value = value;
                while value != 0 {
                    let row = w * 64 + value.trailing_zeros() as usize;
                    rows[row * words_per_row + word] |= bit;
                    value &= value - 1;
                }
            }
        }
        Blocks {
            spans,
            rows,
            words_per_row,
        }
    }

    /// Roughly what it takes in memory.
    pub fn bytes(&self) -> usize {
        self.rows.len() * 8 + self.spans.len() * 16
    }

    /// The files that may hold `query`'s lines (by place, in order), each with its runs
    /// to read (adjacent blocks joined, in order).
    pub fn parts(&self, query: &Query) -> Vec<(u32, Vec<Part>)> {
        let mut rows: Vec<usize> = query
            .hashes
            .iter()
            .flat_map(|&hash| positions(hash, BLOCK_BITS))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let mut may = vec![u64::MAX; self.words_per_row];
        for row in rows {
            let row = &self.rows[row * self.words_per_row..][..self.words_per_row];
            for (may, word) in may.iter_mut().zip(row) {
                *may &= word;
            }
        }
        let mut files: Vec<(u32, Vec<Part>)> = Vec::new();
        for (w, &word) in may.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let Some(span) = self.spans.get(i) else { break };
                let part = Part {
                    bytes: span.start as usize..span.end as usize,
                    first_line: span.line as usize + 1,
                };
                match files.last_mut() {
                    Some((place, parts)) if *place == span.place => match parts.last_mut() {
                        Some(last) if last.bytes.end == part.bytes.start => {
                            last.bytes.end = part.bytes.end;
                        }
                        _ => parts.push(part),
                    },
                    _ => files.push((span.place, vec![part])),
                }
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Query {
        Query::new(q.as_bytes()).unwrap()
    }

    /// What a search reads of `texts` (the files by place) for `q`.
    fn parts(texts: &[&str], q: &str) -> Vec<(u32, Vec<Part>)> {
        let filters: Vec<Filter> = texts.iter().map(|t| Filter::of_text(t)).collect();
        let blocks = Blocks::new(filters.iter().enumerate().map(|(p, f)| (p as u32, f)));
        blocks.parts(&query(q))
    }

    #[test]
    fn a_block_holds_its_lines_trigrams_in_any_ascii_case() {
        let text = "fn Total() {}\nlet x = 1;\n";
        let whole = Part {
            bytes: 0..text.len(),
            first_line: 1,
        };
        assert_eq!(parts(&["nothing", text], "TOTAL"), [(1, vec![whole])]);
        assert!(Query::new(b"ab").is_none());
        assert!(
            Query::new(b"a\nbc").is_none(),
            "no trigram across a line break"
        );
        assert!(Query::new("é".as_bytes()).is_none(), "two bytes");
        assert_eq!(parts(&["", "abc"], "abc").len(), 1);
    }

    #[test]
    fn only_the_blocks_that_may_hold_a_query_are_read() {
        // Blocks of whole lines: the needle's line is in one block, found at its line.
        let filler = "let filler_value = compute(1, 2, 3);\n".repeat(600);
        let text = format!("{filler}fn needle_here() {{}}\n{filler}");
        assert!(Filter::of_text(&text).blocks.len() > 4);
        // Past 64 blocks, so that the rows' second words count too.
        let files: Vec<&str> = std::iter::repeat_n(text.as_str(), 30).collect();
        let found = parts(&files, "needle_here");
        assert_eq!(found.len(), 30);
        for (place, (at_place, parts)) in found.iter().enumerate() {
            assert_eq!((*at_place as usize, parts.len()), (place, 1), "{parts:?}");
            let part = &parts[0];
            let run = &text[part.bytes.clone()];
            assert!(text[..part.bytes.start].ends_with('\n'));
            let at = run.find("needle_here").unwrap();
            assert_eq!(part.first_line + run[..at].matches('\n').count(), 601);
        }
        // What every block holds: the whole text, one part.
        let whole = Part {
            bytes: 0..text.len(),
            first_line: 1,
        };
        assert_eq!(parts(&[&text], "filler_value"), [(0, vec![whole])]);
    }

    #[test]
    fn no_line_that_holds_a_query_is_left_unread() {
        // Every piece of every line of varied text, as a query, is in a part read.
        let text: String = (0..3_000)
            .map(|i| {
                format!(
                    "let v{i} = w{} * {} + \"s{}\";\n",
                    i * 7 % 1000,
                    i % 13,
                    i * 31
                )
            })
            .collect();
        for (n, line) in text.lines().enumerate().step_by(37) {
            for q in [&line[..line.len().min(9)], &line[line.len() / 2..]] {
                let Some(query) = Query::new(q.as_bytes()) else {
                    continue;
                };
                let filter = Filter::of_text(&text);
                let blocks = Blocks::new([(0, &filter)].into_iter());
                let found = blocks.parts(&query);
                let start: usize = text.lines().take(n).map(|l| l.len() + 1).sum();
                assert!(
                    found[0].1.iter().any(|p| p.bytes.contains(&start)),
                    "line {n}, query {q:?}"
                );
            }
        }
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
