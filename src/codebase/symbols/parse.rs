//! Definitions read from source with tree-sitter grammars (Rust, Python, JavaScript,
//! TypeScript, Go, Java): each named node of a defining type becomes a symbol, with the
//! type, impl, class or module around it as its container. A walk with an explicit stack,
//! so that deeply nested code cannot overflow the thread's stack.

use tree_sitter::{Language, Node, Parser};

use super::Kind;

/// Longer names are not symbols anyone looks up (and would not fit PostgreSQL's B-tree
/// index rows); longer containers are cut.
const MAX_NAME_BYTES: usize = 256;

/// One definition in a file; lines are 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: Kind,
    pub line: i64,
    pub end_line: i64,
    pub container: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
}

impl Lang {
    fn of(path: &str) -> Option<Lang> {
        let extension = path.rsplit_once('.')?.1;
        Some(match extension {
            "rs" => Lang::Rust,
            "py" | "pyi" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            "java" => Lang::Java,
            _ => return None,
        })
    }

    fn grammar(self) -> Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }
}

/// What encloses a node: the container's name, and whether functions here are methods.
#[derive(Clone, Default)]
struct Scope {
    container: Option<String>,
    in_type: bool,
}

/// The definitions in `source`, in source order; none for files of other languages.
pub fn definitions(path: &str, source: &str) -> Vec<Definition> {
    let Some(lang) = Lang::of(path) else {
        return Vec::new();
    };
    let mut parser = Parser::new();
    if parser.set_language(&lang.grammar()).is_err() {
        return Vec::new();
    }
    let Some(tree) = parser.parse(source, None) else {
        return Vec::new();
    };
    let text = |node: Node| {
        node.utf8_text(source.as_bytes())
            .unwrap_or_default()
            .to_owned()
    };
    let mut found = Vec::new();
    let mut stack = vec![(tree.root_node(), Scope::default())];
    while let Some((node, scope)) = stack.pop() {
        for (kind, name) in classify(lang, node, &scope, &text) {
            if name.len() > MAX_NAME_BYTES {
                continue;
            }
            let container = match (lang, node.kind()) {
                (Lang::Go, "method_declaration") => receiver_type(node, &text),
                _ => scope.container.clone(),
            }
            .map(|container| cut(container, MAX_NAME_BYTES));
            found.push(Definition {
                name,
                kind,
                line: node.start_position().row as i64 + 1,
                end_line: node.end_position().row as i64 + 1,
                container,
            });
        }
        let inner = inner_scope(lang, node, &scope, &text);
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        stack.extend(
            children
                .into_iter()
                .rev()
                .map(|child| (child, inner.clone())),
        );
    }
    found.sort_by_key(|d| (d.line, d.end_line));
    found
}

fn name_of(node: Node, text: &impl Fn(Node) -> String) -> Option<String> {
    node.child_by_field_name("name")
        .map(text)
        .filter(|name| !name.is_empty())
}

/// The symbols `node` defines (several for `const A, B = …` in Go).
fn classify(
    lang: Lang,
    node: Node,
    scope: &Scope,
    text: &impl Fn(Node) -> String,
) -> Vec<(Kind, String)> {
    let function = if scope.in_type {
        Kind::Method
    } else {
        Kind::Function
    };
    let kind = match (lang, node.kind()) {
        (Lang::Rust, "function_item" | "function_signature_item") => function,
        (Lang::Rust, "struct_item" | "union_item") => Kind::Struct,
        (Lang::Rust, "enum_item") => Kind::Enum,
        (Lang::Rust, "trait_item") => Kind::Trait,
        (Lang::Rust, "type_item") => Kind::Type,
        (Lang::Rust, "const_item" | "static_item") => Kind::Constant,
        (Lang::Rust, "mod_item") => Kind::Module,
        (Lang::Python, "function_definition") => function,
        (Lang::Python, "class_definition") => Kind::Class,
        (Lang::JavaScript | Lang::TypeScript | Lang::Tsx, kind) => match kind {
            "function_declaration" | "generator_function_declaration" | "function_signature" => {
                Kind::Function
            }
            "method_definition" | "method_signature" | "abstract_method_signature" => Kind::Method,
            "class_declaration" | "abstract_class_declaration" => Kind::Class,
            "interface_declaration" => Kind::Interface,
            "type_alias_declaration" => Kind::Type,
            "enum_declaration" => Kind::Enum,
            "internal_module" | "module" => Kind::Module,
            "variable_declarator" => return declared_variable(node, text),
            _ => return Vec::new(),
        },
        (Lang::Go, "function_declaration") => Kind::Function,
        (Lang::Go, "method_declaration") => Kind::Method,
        (Lang::Go, "type_spec") => match node.child_by_field_name("type").map(|t| t.kind()) {
            Some("struct_type") => Kind::Struct,
            Some("interface_type") => Kind::Interface,
            _ => Kind::Type,
        },
        (Lang::Go, "type_alias") => Kind::Type,
        (Lang::Go, "const_spec") => {
            let mut cursor = node.walk();
            return node
                .children_by_field_name("name", &mut cursor)
                .filter(|name| name.is_named())
                .map(|name| (Kind::Constant, text(name)))
                .collect();
        }
        (Lang::Java, "class_declaration" | "record_declaration") => Kind::Class,
        (Lang::Java, "interface_declaration" | "annotation_type_declaration") => Kind::Interface,
        (Lang::Java, "enum_declaration") => Kind::Enum,
        (Lang::Java, "method_declaration" | "constructor_declaration") => Kind::Method,
        _ => return Vec::new(),
    };
    name_of(node, text)
        .map(|name| vec![(kind, name)])
        .unwrap_or_default()
}

/// `const f = () => …` is a function; another `const` at the top of a module a constant.
fn declared_variable(node: Node, text: &impl Fn(Node) -> String) -> Vec<(Kind, String)> {
    let Some(name) = node
        .child_by_field_name("name")
        .filter(|n| n.kind() == "identifier")
    else {
        return Vec::new();
    };
    let value = node.child_by_field_name("value").map(|v| v.kind());
    let is_function = matches!(
        value,
        Some("arrow_function" | "function_expression" | "function" | "generator_function")
    );
    let declaration = node.parent();
    let is_const = declaration
        .is_some_and(|d| d.kind() == "lexical_declaration" && text(d).starts_with("const"));
    let top_level = declaration
        .and_then(|d| d.parent())
        .is_some_and(|p| matches!(p.kind(), "program" | "export_statement"));
    match (is_function, is_const && top_level) {
        (true, _) => vec![(Kind::Function, text(name))],
        (false, true) => vec![(Kind::Constant, text(name))],
        _ => Vec::new(),
    }
}

/// The scope `node`'s children are in.
fn inner_scope(lang: Lang, node: Node, scope: &Scope, text: &impl Fn(Node) -> String) -> Scope {
    let typed = |container: Option<String>| Scope {
        container: container.or_else(|| scope.container.clone()),
        in_type: true,
    };
    match (lang, node.kind()) {
        (Lang::Rust, "impl_item") => typed(
            node.child_by_field_name("type")
                .map(|t| base_type(&text(t))),
        ),
        (Lang::Rust, "trait_item") => typed(name_of(node, text)),
        (Lang::Rust, "mod_item") => Scope {
            container: name_of(node, text),
            in_type: false,
        },
        (Lang::Python, "class_definition")
        | (
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx,
            "class_declaration" | "abstract_class_declaration" | "class" | "interface_declaration",
        )
        | (
            Lang::Java,
            "class_declaration"
            | "record_declaration"
            | "interface_declaration"
            | "enum_declaration"
            | "annotation_type_declaration",
        ) => typed(name_of(node, text)),
        (Lang::TypeScript | Lang::Tsx, "internal_module" | "module") => Scope {
            container: name_of(node, text),
            in_type: false,
        },
        // A function nested in a method is a function.
        (_, kind) if kind.contains("function") || kind.contains("method") => Scope {
            container: scope.container.clone(),
            in_type: false,
        },
        _ => scope.clone(),
    }
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let at = (0..=max)
            .rev()
            .find(|at| text.is_char_boundary(*at))
            .unwrap_or(0);
        text.truncate(at);
    }
    text
}

/// `Vec<T>` → `Vec`, `&'a mut Cart` → `Cart`, `crate::a::B` → `B`.
fn base_type(text: &str) -> String {
    let head = text.split('<').next().unwrap_or(text);
    let head = head.rsplit("::").next().unwrap_or(head);
    head.trim_start_matches(['&', '*'])
        .split_whitespace()
        .last()
        .unwrap_or(head)
        .to_owned()
}

/// A Go method's receiver type: `(s *Server)` → `Server`.
fn receiver_type(node: Node, text: &impl Fn(Node) -> String) -> Option<String> {
    let receiver = node.child_by_field_name("receiver")?;
    let mut stack = vec![receiver];
    while let Some(node) = stack.pop() {
        if node.kind() == "type_identifier" {
            return Some(text(node));
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded() {
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        let source = format!("fn {long}() {{}}\nfn short() {{}}\n");
        let names: Vec<String> = definitions("a.rs", &source)
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["short"]);
        assert_eq!(cut("éé".into(), 3), "é");
        assert!(definitions("notes.txt", "fn a() {}").is_empty());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 20_000;
        let source = format!("fn a() {{ {}1{} }}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(definitions("a.rs", &source)[0].name, "a");
    }
}
