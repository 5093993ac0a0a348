//! Nested in memory, flat on the wire.
//!
//! Commands ([`crate::Op`]) and stored records (`apply::Record`) are grouped by business area in
//! memory: `Op::School(SchoolOp::CreateRoom(..))`, `Record::School(SchoolRecord::Room(..))`. What
//! is written to the log, to disk, to snapshots, backups and peers is one flat enum: a tag
//! (bincode's variant index, serde's variant name) and then the variant's body. The formats were
//! first written that way, before areas existed, and every byte written since must still read.
//!
//! [`flat_wire!`] generates, from one line per variant — tag, wire name, and where the variant
//! lives now — `Serialize` and `Deserialize` for the nested enum that write exactly what the flat
//! one did. A tuple variant of the flat enum is a newtype of a tuple here (`Calendar((t, c))`):
//! bincode writes both as the fields one after another. A tag is never reused or reordered; a new
//! variant takes the next one (append only, like any format).

/// One line per variant: `tag "WireName" => Outer(area::AreaEnum::Variant),`.
///
/// `flat_wire!(Op, "command", from; ..)` also generates `From<area::Variant> for Op` for
/// variants whose body is a struct of that name, and `Op::replies_as_declared`, which needs
/// every such struct to declare its reply (`crate::Request`).
macro_rules! flat_wire {
    ($outer:ident, $what:literal, from; $($tag:literal $name:literal => $area:ident($module:ident::$inner:ident::$variant:ident),)*) => {
        $crate::wire::flat_wire!($outer, $what; $($tag $name => $area($module::$inner::$variant),)*);

        $(impl From<$module::$variant> for $outer {
            fn from(body: $module::$variant) -> $outer {
                $outer::$area($module::$inner::$variant(body))
            }
        })*

        impl $outer {
            /// Whether `outcome` is a rejection or the reply this command declares.
            pub fn replies_as_declared(&self, outcome: &$crate::model::Outcome) -> bool {
                if matches!(outcome, $crate::model::Outcome::Rejected(_)) {
                    return true;
                }
                match self {
                    $($outer::$area($module::$inner::$variant(_)) => {
                        <$module::$variant as $crate::op::Request>::reply(outcome.clone()).is_ok()
                    })*
                }
            }
        }
    };
    ($outer:ident, $what:literal; $($tag:literal $name:literal => $area:ident($module:ident::$inner:ident::$variant:ident),)*) => {
        /// Every variant's wire name, indexed by tag.
        pub(crate) const NAMES: &[&str] = &[$($name),*];

        impl serde::Serialize for $outer {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $($outer::$area($module::$inner::$variant(body)) => {
                        serializer.serialize_newtype_variant(stringify!($outer), $tag, $name, body)
                    })*
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $outer {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$outer, D::Error> {
                use serde::de::{self, EnumAccess, VariantAccess, Visitor};

                /// A variant's tag as read: bincode gives its index, self-describing formats
                /// its name.
                struct Tag(u32);

                impl<'de> serde::Deserialize<'de> for Tag {
                    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tag, D::Error> {
                        struct TagVisitor;

                        impl Visitor<'_> for TagVisitor {
                            type Value = Tag;

                            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                                write!(f, "a {} kind's index or name", $what)
                            }

                            fn visit_u64<E: de::Error>(self, index: u64) -> Result<Tag, E> {
                                // Out-of-range indexes reach the caller, which says what they are.
                                Ok(Tag(u32::try_from(index).unwrap_or(u32::MAX)))
                            }

                            fn visit_str<E: de::Error>(self, name: &str) -> Result<Tag, E> {
                                match NAMES.iter().position(|n| *n == name) {
                                    Some(index) => Ok(Tag(index as u32)),
                                    None => Err(de::Error::unknown_variant(name, NAMES)),
                                }
                            }
                        }

                        deserializer.deserialize_identifier(TagVisitor)
                    }
                }

                struct FlatVisitor;

                impl<'de> Visitor<'de> for FlatVisitor {
                    type Value = $outer;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        write!(f, "a Roomraft {}", $what)
                    }

                    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<$outer, A::Error> {
                        let (Tag(tag), body) = data.variant()?;
                        match tag {
                            $($tag => body.newtype_variant().map(|b| $outer::$area($module::$inner::$variant(b))),)*
                            _ => Err(de::Error::custom(format_args!(
                                "{} kind {tag} is unknown to this build, which knows {}; \
                                 was it written by a newer Roomraft?",
                                $what,
                                NAMES.len()
                            ))),
                        }
                    }
                }

                deserializer.deserialize_enum(stringify!($outer), NAMES, FlatVisitor)
            }
        }
    };
}

pub(crate) use flat_wire;
