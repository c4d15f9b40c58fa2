//! An answer as WhatsApp shows it: Markdown simplified to WhatsApp's own marks
//! (`*bold*`, `_italic_`, `~strike~`, ``` blocks), then cut into ordered parts that each
//! fit one message, with nothing lost.

/// The most characters WhatsApp accepts in one text message.
pub const PART_MAX: usize = 4096;

/// Markdown to WhatsApp formatting. Code blocks pass through untouched (only the fence's
/// language tag goes: WhatsApp would show it as text).
pub fn to_whatsapp(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut in_code = false;
    for line in markdown.split_inclusive('\n') {
        let (content, newline) = match line.strip_suffix('\n') {
            Some(content) => (content.strip_suffix('\r').unwrap_or(content), "\n"),
            None => (line, ""),
        };
        if content.trim_start().starts_with("```") {
            in_code = !in_code;
            out.push_str("```");
        } else if in_code {
            out.push_str(content);
        } else {
            out.push_str(&convert_line(content));
        }
        out.push_str(newline);
    }
    out
}

fn convert_line(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let hashes = trimmed.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
        let title = inline(trimmed[hashes..].trim());
        let title = title.trim_matches('*');
        return format!("{indent}*{title}*");
    }
    // `* item` is a Markdown bullet, but a lone `*` opens bold in WhatsApp.
    if let Some(item) = trimmed.strip_prefix("* ") {
        return format!("{indent}- {}", inline(item));
    }
    format!("{indent}{}", inline(trimmed))
}

/// Inline marks: `**b**`/`__b__` → `*b*`, `*i*` → `_i_`, `~~s~~` → `~s~`,
/// `[text](url)` → `text (url)`; `code` spans are left as they are.
fn inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest[0] == '`' {
            let end = rest[1..].iter().position(|c| *c == '`').map(|p| p + 2);
            let end = end.unwrap_or(rest.len());
            out.extend(&rest[..end]);
            i += end;
            continue;
        }
        if let Some((inner, used)) =
            delimited(rest, &['*', '*']).or_else(|| delimited(rest, &['_', '_']))
        {
            out.push('*');
            out.push_str(&inline(&inner));
            out.push('*');
            i += used;
            continue;
        }
        if let Some((inner, used)) = delimited(rest, &['~', '~']) {
            out.push('~');
            out.push_str(&inline(&inner));
            out.push('~');
            i += used;
            continue;
        }
        if let Some((inner, used)) = delimited(rest, &['*']) {
            out.push('_');
            out.push_str(&inline(&inner));
            out.push('_');
            i += used;
            continue;
        }
        if let Some((label, url, used)) = link(rest) {
            out.push_str(&format!("{label} ({url})"));
            i += used;
            continue;
        }
        out.push(rest[0]);
        i += 1;
    }
    out
}

/// `marker inner marker` at the start of `text`, with `inner` non-empty and not padded
/// by spaces (so `2 * 3 * 4` stays arithmetic).
fn delimited(text: &[char], marker: &[char]) -> Option<(String, usize)> {
    let n = marker.len();
    if !text.starts_with(marker) || text.len() <= 2 * n {
        return None;
    }
    let body = &text[n..];
    if body[0].is_whitespace() || body.starts_with(&marker[..1]) {
        return None;
    }
    let end = (1..body.len()).find(|&j| {
        body[j..].starts_with(marker)
            && !body[j - 1].is_whitespace()
            && !(n == 1 && body.get(j + 1) == Some(&marker[0]))
    })?;
    Some((body[..end].iter().collect(), end + 2 * n))
}

fn link(text: &[char]) -> Option<(String, String, usize)> {
    if text.first() != Some(&'[') {
        return None;
    }
    let close = text.iter().position(|c| *c == ']')?;
    if text.get(close + 1) != Some(&'(') {
        return None;
    }
    let end = text[close + 2..].iter().position(|c| *c == ')')? + close + 2;
    let label: String = text[1..close].iter().collect();
    let url: String = text[close + 2..end].iter().collect();
    if url.is_empty() || url.contains(char::is_whitespace) {
        return None;
    }
    Some((label, url, end + 1))
}

/// Cuts `text` into parts of at most `max` characters whose concatenation is exactly
/// `text`: after the last line break that fits, else the last space, else anywhere on a
/// character boundary (never inside a multi-byte character).
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((limit, _)) = rest.char_indices().nth(max) else {
            parts.push(rest.to_owned());
            break;
        };
        let window = &rest[..limit];
        let cut = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .map(|at| at + 1)
            .filter(|&at| at > limit / 2)
            .unwrap_or(limit);
        parts.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_whatsapp_marks() {
        let markdown = "## Summary\n**Bold** and *italic* and __strong__ and ~~gone~~.\n\
            * first\n- second\nSee [the docs](https://example.com/a).\n\
            `a*b*c` stays, 2 * 3 * 4 too.\n```rust\nlet x = **y;\n```\n";
        assert_eq!(
            to_whatsapp(markdown),
            "*Summary*\n*Bold* and _italic_ and *strong* and ~gone~.\n- first\n- second\n\
             See the docs (https://example.com/a).\n`a*b*c` stays, 2 * 3 * 4 too.\n\
             ```\nlet x = **y;\n```\n"
        );
    }

    #[test]
    fn headings_with_bold_are_not_doubled() {
        assert_eq!(to_whatsapp("# **Title**"), "*Title*");
    }

    #[test]
    fn parts_fit_keep_order_and_lose_nothing_with_multi_byte_text() {
        let line = "नमस्ते दुनिया 👋🏽 — résumé ünïcödé\n";
        let text = line.repeat(400);
        let parts = split(&text, PART_MAX);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= PART_MAX));
        assert_eq!(parts.concat(), text);
        assert!(
            parts[..parts.len() - 1].iter().all(|p| p.ends_with('\n')),
            "cut at line ends"
        );
    }

    #[test]
    fn text_without_breaks_is_cut_on_character_boundaries() {
        let text = "😀".repeat(9000);
        let parts = split(&text, PART_MAX);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [4096, 4096, 808]
        );
        assert_eq!(parts.concat(), text);
        assert_eq!(split("short", PART_MAX), ["short"]);
        assert!(split("", PART_MAX).is_empty());
    }
}
