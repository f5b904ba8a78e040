//! What every redb store shares: one way to turn redb's error types into the store's own.

// The macro below names redb through this path, so its expansion does not depend on how
// (or whether) the calling crate names redb.
#[doc(hidden)]
pub use redb as __redb;

/// Converts every redb error a store's `?` meets into `$error::Db(redb::Error)`.
///
/// One `From` impl per redb error type (database, transaction, table, storage, commit,
/// durability); `$error` must have a `Db(redb::Error)` variant.
#[macro_export]
macro_rules! impl_from_redb_errors {
    ($error:ty) => {
        $crate::impl_from_redb_errors!(@each $error;
            DatabaseError, TransactionError, TableError, StorageError, CommitError,
            SetDurabilityError);
    };
    (@each $error:ty; $($t:ident),*) => {$(
        impl ::core::convert::From<$crate::db::__redb::$t> for $error {
            fn from(e: $crate::db::__redb::$t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
