//! Domain errors as GraphQL errors with `extensions.code`: the table is `ioto_domain::Error::public`.

use async_graphql::ErrorExtensions;
use ioto_domain::Error;

/// Maps a domain error. Details of `UNAVAILABLE` and `INTERNAL` are logged here and replaced by
/// the domain's fixed sentence.
pub fn to_gql(e: Error) -> async_graphql::Error {
    if e.is_private() {
        tracing::error!(code = e.code().as_str(), detail = %e, "request failed");
    }
    let public = e.public();
    async_graphql::Error::new(public.message).extend_with(|_, ext| {
        ext.set("code", public.code.as_str());
        if let Some(f) = &public.field {
            ext.set("field", f.as_str());
        }
    })
}

/// `?`-friendly conversion for resolver bodies.
pub(crate) trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for ioto_domain::Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_gql)
    }
}
