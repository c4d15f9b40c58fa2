//! The local explainer and documenter: they read the code's own structure (functions,
//! types, calls) and say what it shows, in the user's language.

use std::{collections::BTreeSet, sync::LazyLock};

use regex::Regex;

use super::language::Language;
use crate::specialists::schemas::{Explanation, KeyConcept};

static FUNCTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:export\s+)?(?:async\s+)?(?:fn|def|func|function)\s+([A-Za-z_]\w*)\s*(?:<[^>]*>)?\s*\(([^)]*)\)")
        .expect("valid pattern")
});
static TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:export\s+)?(struct|enum|trait|class|interface|type)\s+([A-Za-z_]\w*)")
        .expect("valid pattern")
});
static CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([A-Za-z_][\w.:]*)\s*\(").expect("valid pattern"));

const KEYWORDS: [&str; 22] = [
    "if", "for", "while", "match", "return", "fn", "def", "func", "function", "switch", "catch",
    "print", "println", "Some", "Ok", "Err", "await", "async", "elif", "with", "assert", "not",
];

/// What the code is made of.
#[derive(Debug, Default)]
pub struct Structure {
    pub language: &'static str,
    pub functions: Vec<(String, String)>,
    pub types: Vec<(String, String)>,
    pub calls: Vec<String>,
    pub uses_async: bool,
    pub handles_errors: bool,
    pub loops: bool,
    pub recursive: Vec<String>,
}

pub fn structure(code: &str) -> Structure {
    let functions: Vec<(String, String)> = FUNCTION
        .captures_iter(code)
        .map(|c| {
            (
                c[1].to_owned(),
                c[2].split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    let types = TYPE
        .captures_iter(code)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    let defined: BTreeSet<&str> = functions.iter().map(|(name, _)| name.as_str()).collect();
    let mut calls = BTreeSet::new();
    for capture in CALL.captures_iter(code) {
        let name = &capture[1];
        let last = name.rsplit(['.', ':']).next().unwrap_or(name);
        if !KEYWORDS.contains(&last) && !defined.contains(name) && !last.is_empty() {
            calls.insert(name.to_owned());
        }
    }
    let recursive = functions
        .iter()
        .filter(|(name, _)| code.matches(&format!("{name}(")).count() > 1)
        .map(|(name, _)| name.clone())
        .collect();
    Structure {
        language: guess_language(code),
        functions,
        types,
        calls: calls.into_iter().take(12).collect(),
        uses_async: code.contains("async ") || code.contains("await"),
        handles_errors: ["?;", "Result<", "try:", "except", "catch", "if err != nil"]
            .iter()
            .any(|s| code.contains(s)),
        loops: ["for ", "while ", ".map(", ".iter()", "forEach"]
            .iter()
            .any(|s| code.contains(s)),
        recursive,
    }
}

fn guess_language(code: &str) -> &'static str {
    if code.contains("fn ") && (code.contains("let ") || code.contains("->")) {
        "Rust"
    } else if code.contains("def ") && code.contains(':') {
        "Python"
    } else if code.contains("func ") && code.contains("package ") || code.contains(":= ") {
        "Go"
    } else if code.contains("function ") || code.contains("=>") || code.contains("const ") {
        "JavaScript/TypeScript"
    } else if code.contains("public class") || code.contains("private ") {
        "Java"
    } else {
        "code"
    }
}

/// `` (`a`, `b`)`` after a count, or nothing when the list is empty.
fn listed(items: &[(String, String)], pick: impl Fn(&(String, String)) -> &str) -> String {
    if items.is_empty() {
        return String::new();
    }
    let names: Vec<String> = items
        .iter()
        .map(|item| format!("`{}`", pick(item)))
        .collect();
    format!(" ({})", names.join(", "))
}

/// An explanation of `code` built from its structure.
pub fn explain(code: &str, language: Language, found_in: Option<&str>) -> Explanation {
    let s = structure(code);
    let (lang, function_count, type_count) = (s.language, s.functions.len(), s.types.len());
    let functions = listed(&s.functions, |(name, _)| name);
    let types = listed(&s.types, |(_, name)| name);
    let calls = s
        .calls
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut explanation = match language {
        Language::English => format!(
            "This {lang} code defines {function_count} function(s){functions} and {type_count} type(s){types}."
        ),
        Language::Hindi => format!(
            "यह {lang} कोड {function_count} फ़ंक्शन{functions} और {type_count} टाइप{types} परिभाषित करता है।"
        ),
        Language::Hinglish => format!(
            "Yeh {lang} code {function_count} function{functions} aur {type_count} type{types} define karta hai."
        ),
    };
    for (name, params) in s.functions.iter().take(5) {
        let params = if params.is_empty() {
            "-".to_owned()
        } else {
            params.clone()
        };
        explanation.push_str(&match language {
            Language::English => format!(" `{name}` takes ({params})."),
            Language::Hindi => format!(" `{name}` ये पैरामीटर लेता है: ({params})।"),
            Language::Hinglish => format!(" `{name}` yeh parameters leta hai: ({params})."),
        });
    }
    if !calls.is_empty() {
        explanation.push_str(&match language {
            Language::English => format!(" It calls {calls}."),
            Language::Hindi => format!(" यह {calls} को कॉल करता है।"),
            Language::Hinglish => format!(" Yeh {calls} ko call karta hai."),
        });
    }
    if let Some(location) = found_in {
        explanation.push_str(&match language {
            Language::English => format!(" (Found in the project at {location}.)"),
            Language::Hindi => format!(" (प्रोजेक्ट में {location} पर मिला।)"),
            Language::Hinglish => format!(" (Project mein {location} par mila.)"),
        });
    }
    explanation.push_str(match language {
        Language::English => "\n\n_Answered by CodeSherpa's local engine, which reads code structure offline; configure an AI provider for deeper explanations._",
        Language::Hindi => "\n\n_यह उत्तर CodeSherpa के लोकल इंजन से है, जो कोड की संरचना ऑफ़लाइन पढ़ता है; गहरी व्याख्या के लिए AI प्रोवाइडर जोड़ें।_",
        Language::Hinglish => "\n\n_Yeh jawab CodeSherpa ke local engine se hai, jo code ka structure offline padhta hai; deeper explanation ke liye AI provider configure karo._",
    });

    let mut key_concepts: Vec<KeyConcept> = Vec::new();
    for (kind, name) in s.types.iter().take(3) {
        key_concepts.push(KeyConcept {
            term: name.clone(),
            definition: format!("a {kind} defined here"),
        });
    }
    for (name, params) in s.functions.iter().take(3) {
        key_concepts.push(KeyConcept {
            term: name.clone(),
            definition: format!("a function taking ({params})"),
        });
    }
    let concepts: [(bool, &str, &str); 3] = [
        (
            s.uses_async,
            "async/await",
            "the code waits for slow work (I/O) without blocking the thread",
        ),
        (
            s.handles_errors,
            "error handling",
            "failures are returned or caught instead of crashing",
        ),
        (
            s.loops,
            "iteration",
            "the code repeats work over a collection or until a condition holds",
        ),
    ];
    for (present, term, definition) in concepts {
        if present {
            key_concepts.push(KeyConcept {
                term: term.into(),
                definition: definition.into(),
            });
        }
    }
    for name in &s.recursive {
        key_concepts.push(KeyConcept {
            term: format!("recursion in `{name}`"),
            definition: "the function calls itself on a smaller problem".into(),
        });
    }

    let subject = s
        .functions
        .first()
        .map(|(n, _)| n.clone())
        .or_else(|| s.types.first().map(|(_, n)| n.clone()));
    let analogy = match (&subject, language) {
        (Some(name), Language::English) => format!("Think of `{name}` as a kitchen station: inputs arrive, it does one job, and hands the result to the next station."),
        (Some(name), Language::Hindi) => format!("`{name}` को रसोई के एक स्टेशन की तरह समझिए: सामग्री आती है, वह एक काम करता है और नतीजा आगे बढ़ा देता है।"),
        (Some(name), Language::Hinglish) => format!("`{name}` ko kitchen ke ek station ki tarah samjho: input aata hai, woh ek kaam karta hai, aur result aage de deta hai."),
        (None, _) => String::new(),
    };
    let mut learning_steps: Vec<String> = s
        .functions
        .iter()
        .take(3)
        .map(|(name, _)| match language {
            Language::English => {
                format!("Read `{name}`'s signature, then trace one input through its body.")
            }
            Language::Hindi => format!("`{name}` का सिग्नेचर पढ़ें, फिर एक इनपुट को उसके अंदर ट्रेस करें।"),
            Language::Hinglish => {
                format!("`{name}` ka signature padho, phir ek input ko uske andar trace karo.")
            }
        })
        .collect();
    learning_steps.push(match language {
        Language::English => {
            "Write a small test that calls the code with a typical and an edge-case input.".into()
        }
        Language::Hindi => "एक छोटा टेस्ट लिखें जो सामान्य और किनारे वाले इनपुट से कोड चलाए।".into(),
        Language::Hinglish => {
            "Ek chhota test likho jo normal aur edge-case input se code chalaye.".into()
        }
    });
    Explanation {
        explanation,
        key_concepts,
        analogy,
        learning_steps,
    }
}

/// Markdown documentation of `code` from its structure.
pub fn document(code: &str) -> String {
    let s = structure(code);
    let mut doc = format!(
        "# Documentation\n\n{} code with {} function(s) and {} type(s).\n",
        s.language,
        s.functions.len(),
        s.types.len()
    );
    if !s.types.is_empty() {
        doc.push_str("\n## Types\n\n");
        for (kind, name) in &s.types {
            doc.push_str(&format!("- `{name}` ({kind})\n"));
        }
    }
    if !s.functions.is_empty() {
        doc.push_str("\n## Functions\n");
        for (name, params) in &s.functions {
            doc.push_str(&format!("\n### `{name}({params})`\n\n"));
            let list: Vec<&str> = params
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && *p != "self" && *p != "&self")
                .collect();
            if list.is_empty() {
                doc.push_str("Takes no parameters.\n");
            } else {
                doc.push_str("**Parameters**\n\n");
                for param in list {
                    doc.push_str(&format!("- `{param}`\n"));
                }
            }
        }
    }
    if !s.calls.is_empty() {
        doc.push_str(&format!(
            "\n## Depends on\n\n{}\n",
            s.calls
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    doc.push_str("\n_Generated by CodeSherpa's local engine from the code's structure (offline); review and add intent, examples and caveats._\n");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "pub struct Cart { items: Vec<u32> }\n\npub fn total(cart: &Cart) -> u32 {\n    cart.items.iter().sum()\n}\n\nfn fact(n: u64) -> u64 { if n == 0 { 1 } else { n * fact(n - 1) } }\n";

    #[test]
    fn structure_is_read_from_the_code() {
        let s = structure(CODE);
        assert_eq!(s.language, "Rust");
        let names: Vec<&str> = s.functions.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["total", "fact"]);
        assert_eq!(s.types, [("struct".to_owned(), "Cart".to_owned())]);
        assert_eq!(s.recursive, ["fact"]);
        assert!(s.loops);
    }

    #[test]
    fn explanations_follow_the_users_language() {
        let english = explain(CODE, Language::English, None);
        assert!(english.explanation.contains("`total` takes (cart: &Cart)"));
        assert!(english.key_concepts.iter().any(|c| c.term == "Cart"));
        assert!(english.explanation.contains("local engine"));
        let hinglish = explain(CODE, Language::Hinglish, None);
        assert!(hinglish.explanation.starts_with("Yeh Rust code"));
        let hindi = explain(CODE, Language::Hindi, None);
        assert!(hindi.explanation.starts_with("यह Rust कोड"));
        assert!(!hindi.learning_steps.is_empty());
    }

    #[test]
    fn documentation_lists_functions_and_parameters() {
        let doc = document(CODE);
        assert!(doc.contains("### `total(cart: &Cart)`"));
        assert!(doc.contains("- `Cart` (struct)"));
    }
}
