//! The types of the expression language (a small lattice with `unknown` for
//! schema-less values), their conversion from schema declarations, and the
//! words used to describe them to a marketer ("a number", "text").

use std::rc::Rc;

use crate::syntax::ast;

/// The type of a value. `Unknown` is the type of anything without a schema:
/// it is compatible with everything, so a project that declares nothing is
/// checked only where literals make the types certain.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Unknown,
    Null,
    String,
    Number,
    Bool,
    Timestamp,
    Duration,
    List(Rc<Type>),
    Object(Rc<Object>),
}

/// The fields of an object type, in declaration order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Object {
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub optional: bool,
    /// The declaration's name (`None`: a built-in field). Not part of the
    /// type: two schemas declaring `{ a: string }` give equal types.
    pub decl: Option<crate::source::Span>,
}

impl PartialEq for Field {
    fn eq(&self, other: &Field) -> bool {
        (&self.name, &self.ty, self.optional) == (&other.name, &other.ty, other.optional)
    }
}

impl Object {
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// "`a`, `b`, `c`" (at most eight, then "…"), for help lines.
    pub fn list_names(&self) -> String {
        let mut out = String::new();
        for (i, f) in self.fields.iter().enumerate() {
            if i == 8 {
                out.push_str(", …");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            out.push('`');
            out.push_str(&f.name);
            out.push('`');
        }
        out
    }
}

impl Type {
    /// The type a schema declares.
    pub fn from_ast(ty: &ast::TypeExpr) -> Type {
        match &ty.kind {
            ast::TypeKind::String => Type::String,
            ast::TypeKind::Number => Type::Number,
            ast::TypeKind::Bool => Type::Bool,
            ast::TypeKind::Timestamp => Type::Timestamp,
            ast::TypeKind::Duration => Type::Duration,
            ast::TypeKind::List(inner) => Type::List(Rc::new(Type::from_ast(inner))),
            ast::TypeKind::Object(fields) => Type::Object(Rc::new(Object::from_fields(fields))),
        }
    }

    /// True when nothing is known about the value (no schema, or `null`).
    pub fn is_open(&self) -> bool {
        matches!(self, Type::Unknown | Type::Null)
    }

    /// Whether a value of `self` may meet a value of `other` (in `==`, `in`,
    /// `set`, ...). `null` and unknown values are compatible with everything.
    pub fn compatible(&self, other: &Type) -> bool {
        match (self, other) {
            (a, b) if a.is_open() || b.is_open() => true,
            (Type::List(a), Type::List(b)) => a.compatible(b),
            (Type::Object(_), Type::Object(_)) => true,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }

    /// The more precise of two compatible types (`unknown` and `null` give
    /// way to anything).
    pub fn join(&self, other: &Type) -> Type {
        match (self, other) {
            (Type::Unknown, b) | (Type::Null, b @ Type::Unknown) => b.clone(),
            (a, Type::Unknown | Type::Null) => a.clone(),
            (Type::Null, b) => b.clone(),
            (Type::List(a), Type::List(b)) => Type::List(Rc::new(a.join(b))),
            (a, _) => a.clone(),
        }
    }

    /// How a marketer would say what a value is: "a number", "text".
    pub fn describe(&self) -> String {
        match self {
            Type::Unknown => "a value of unknown type".to_string(),
            Type::Null => "`null`".to_string(),
            Type::String => "text".to_string(),
            Type::Number => "a number".to_string(),
            Type::Bool => "true/false".to_string(),
            Type::Timestamp => "a timestamp".to_string(),
            Type::Duration => "a duration".to_string(),
            Type::List(inner) => format!("a list of {}", inner.plural()),
            Type::Object(_) => "a group of fields".to_string(),
        }
    }

    /// The plural used for list elements: "numbers", "text values".
    fn plural(&self) -> &'static str {
        match self {
            Type::Unknown | Type::Null => "values",
            Type::String => "text values",
            Type::Number => "numbers",
            Type::Bool => "true/false values",
            Type::Timestamp => "timestamps",
            Type::Duration => "durations",
            Type::List(_) => "lists",
            Type::Object(_) => "groups of fields",
        }
    }
}

impl Object {
    pub fn from_fields(fields: &[ast::FieldDecl]) -> Object {
        Object {
            fields: fields
                .iter()
                .map(|f| Field {
                    name: f.name.name.clone(),
                    ty: Type::from_ast(&f.ty),
                    optional: f.optional,
                    decl: Some(f.name.span),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_null_are_compatible_with_everything() {
        for t in [Type::String, Type::Number, Type::List(Rc::new(Type::Bool))] {
            assert!(Type::Unknown.compatible(&t));
            assert!(t.compatible(&Type::Null));
        }
        assert!(!Type::Number.compatible(&Type::String));
        assert!(!Type::List(Rc::new(Type::Number)).compatible(&Type::List(Rc::new(Type::String))));
        assert!(Type::List(Rc::new(Type::Unknown)).compatible(&Type::List(Rc::new(Type::String))));
    }

    #[test]
    fn join_prefers_the_known_type() {
        assert_eq!(Type::Unknown.join(&Type::Number), Type::Number);
        assert_eq!(Type::Null.join(&Type::String), Type::String);
        assert_eq!(Type::Timestamp.join(&Type::Null), Type::Timestamp);
        assert_eq!(
            Type::List(Rc::new(Type::Unknown)).join(&Type::List(Rc::new(Type::Number))),
            Type::List(Rc::new(Type::Number))
        );
    }

    #[test]
    fn descriptions_read_like_english() {
        assert_eq!(Type::String.describe(), "text");
        assert_eq!(
            Type::List(Rc::new(Type::String)).describe(),
            "a list of text values"
        );
    }
}
