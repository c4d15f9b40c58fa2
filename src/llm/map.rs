//! A map of a project for an answer (`codebase::map` draws it): the files most related to
//! a question or a diff with their definitions, and where the names the question asks
//! about are defined and used, so a model can point at code it was not shown. Both the
//! prompt of remote models and the local engine read it.

/// The map: ranked files, then the names looked up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectMap {
    /// The most related files first.
    pub files: Vec<MappedFile>,
    /// The question's identifiers that the project defines or uses.
    pub names: Vec<Named>,
}

/// One file of the map and its definitions, top-level ones first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    pub path: String,
    pub symbols: Vec<MappedSymbol>,
    /// Definitions of the file left out to stay within the budget.
    pub more: usize,
}

/// A definition as the map shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedSymbol {
    pub name: String,
    /// `function`, `struct`, … (`codebase::symbols::Kind`).
    pub kind: &'static str,
    /// The 1-based line it starts on.
    pub line: i64,
    /// The enclosing type, impl, class or module, if any.
    pub container: Option<String>,
}

/// A name the question asks about: its definitions (from the symbols) and the lines that
/// use it as a whole word (the definitions left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub definitions: Vec<Place>,
    pub uses: Vec<Place>,
}

/// A line of the project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub path: String,
    pub line: i64,
    /// What is there: a definition's kind (`function`, or `method in Cart`), or the
    /// line's trimmed text for a use.
    pub what: String,
}

impl Place {
    pub fn citation(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

impl MappedSymbol {
    /// `  function checkout_total, line 4` (`  method price in Cart, line 19`).
    pub fn render(&self) -> String {
        match &self.container {
            Some(container) => format!(
                "  {} {} in {}, line {}\n",
                self.kind, self.name, container, self.line
            ),
            None => format!("  {} {}, line {}\n", self.kind, self.name, self.line),
        }
    }
}

impl MappedFile {
    /// The path's line, then one line per symbol, then how many were left out.
    pub fn render(&self) -> String {
        let mut text = format!("{}\n", self.path);
        for symbol in &self.symbols {
            text.push_str(&symbol.render());
        }
        if self.more > 0 {
            text.push_str(&more_line(self.more));
        }
        text
    }
}

/// The line saying `n` definitions were left out.
pub fn more_line(n: usize) -> String {
    format!("  … {n} more\n")
}

impl Named {
    /// `` `checkout_total` is defined at src/cart.rs:4 (function); used at src/api.rs:2. ``
    pub fn render(&self) -> String {
        let cite = |places: &[Place], with_what: bool| {
            places
                .iter()
                .map(|p| match with_what {
                    true => format!("{} ({})", p.citation(), p.what),
                    false => p.citation(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!("`{}`", self.name);
        if self.definitions.is_empty() {
            text.push_str(" has no definition in the project");
        } else {
            text.push_str(&format!(" is defined at {}", cite(&self.definitions, true)));
        }
        if !self.uses.is_empty() {
            text.push_str(&format!("; used at {}", cite(&self.uses, false)));
        }
        text.push_str(".\n");
        text
    }
}

impl ProjectMap {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.names.is_empty()
    }

    /// The names' lines, then each file with its definitions.
    pub fn render(&self) -> String {
        let mut text: String = self.names.iter().map(Named::render).collect();
        if !self.names.is_empty() && !self.files.is_empty() {
            text.push('\n');
        }
        for file in &self.files {
            text.push_str(&file.render());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_render_names_then_files() {
        let place = |path: &str, line, what: &str| Place {
            path: path.into(),
            line,
            what: what.into(),
        };
        let map = ProjectMap {
            files: vec![MappedFile {
                path: "src/cart.rs".into(),
                symbols: vec![
                    MappedSymbol {
                        name: "checkout_total".into(),
                        kind: "function",
                        line: 4,
                        container: None,
                    },
                    MappedSymbol {
                        name: "price".into(),
                        kind: "method",
                        line: 9,
                        container: Some("Cart".into()),
                    },
                ],
                more: 2,
            }],
            names: vec![Named {
                name: "checkout_total".into(),
                definitions: vec![place("src/cart.rs", 4, "function")],
                uses: vec![place("src/api.rs", 2, "let t = checkout_total(&c);")],
            }],
        };
        assert_eq!(
            map.render(),
            "`checkout_total` is defined at src/cart.rs:4 (function); used at src/api.rs:2.\n\n\
             src/cart.rs\n  function checkout_total, line 4\n  method price in Cart, line 9\n  … 2 more\n"
        );
    }
}
