//! A project's definitions — functions, types, constants, modules — read from its source
//! with tree-sitter grammars at index time ([`parse`]) and stored with the files of the
//! same index generation (`project_symbols`), so lookups see the files' generation only.
//!
//! [`find`] is the lookup for other slices: the definitions of one name; [`in_file`]
//! those of one file.

pub mod parse;
pub mod routes;
mod store;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use store::{definitions_of, find, in_file, lookup, Lookup};

/// What a symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Function,
    /// A function inside an impl, trait, class or interface.
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    Type,
    Constant,
    Module,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Function,
        Kind::Method,
        Kind::Class,
        Kind::Struct,
        Kind::Enum,
        Kind::Trait,
        Kind::Interface,
        Kind::Type,
        Kind::Constant,
        Kind::Module,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::Method => "method",
            Kind::Class => "class",
            Kind::Struct => "struct",
            Kind::Enum => "enum",
            Kind::Trait => "trait",
            Kind::Interface => "interface",
            Kind::Type => "type",
            Kind::Constant => "constant",
            Kind::Module => "module",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One definition in the project's indexed files.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Symbol {
    #[schema(example = "checkout_total")]
    pub name: String,
    pub kind: Kind,
    #[schema(example = "src/cart.rs")]
    pub path: String,
    /// The 1-based line the definition starts on.
    #[schema(minimum = 1, example = 4)]
    pub line: i64,
    /// The 1-based line it ends on.
    #[schema(minimum = 1, example = 6)]
    pub end_line: i64,
    /// The enclosing type, impl, class or module, if any.
    #[schema(example = "Cart")]
    pub container: Option<String>,
}
