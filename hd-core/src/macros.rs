//! Macros shared by the modules that declare enums with a list of their variants.

/// Declares a fieldless enum together with `ALL`, its variants in the order declared, so a
/// variant cannot be left out of the list that the CLI, the benches and the page offer (or,
/// in the codec, of the tags a record may hold).
macro_rules! enum_with_all {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$variant_meta:meta])* $variant:ident,)* }
        $(#[$all_meta:meta])*
        ALL;
    ) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$variant_meta])* $variant,)* }

        impl $name {
            $(#[$all_meta])*
            $vis const ALL: [$name; [$($name::$variant),*].len()] = [$($name::$variant),*];
        }
    };
}
pub(crate) use enum_with_all;
