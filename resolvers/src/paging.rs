//! Keyset paging as the list fields do it: the page asked of the store holds one row more than it
//! shows, which tells whether another page follows; the rows shown carry their cursors.

use ioto_domain::fleet::query::{check_page_size, Cursor, Page};

use crate::error::GqlResult as _;

/// The page to ask of the store for `first` rows after the cursor `after` (one more row than
/// asked, see [`edges`]).
pub(crate) fn page<S>(
    first: i32,
    after: Option<&String>,
    sort: S,
    descending: bool,
) -> async_graphql::Result<Page<S>> {
    let first = check_page_size(first.into()).gql()?;
    Ok(Page {
        sort,
        descending,
        after: after.map(|a| Cursor::decode(a, "after")).transpose().gql()?,
        limit: first + 1,
    })
}

/// The rows of a page read with [`page`]: at most the page's size, each with its cursor, and
/// whether another page follows.
pub(crate) fn edges<R>(
    mut rows: Vec<R>,
    limit: u64,
    cursor: impl Fn(&R) -> Cursor,
) -> (Vec<(String, R)>, bool) {
    let has_next_page = rows.len() as u64 >= limit;
    rows.truncate(usize::try_from(limit - 1).unwrap_or(usize::MAX));
    let edges = rows.into_iter().map(|r| (cursor(&r).encode(), r)).collect();
    (edges, has_next_page)
}

/// The page info of rows shown as [`edges`] gives them: their first and last cursors, whether
/// another page follows, and whether one came before (the page was asked `after` a cursor).
pub(crate) fn page_info<R>(
    edges: &[(String, R)],
    has_next_page: bool,
    after: bool,
) -> crate::fleet::PageInfo {
    crate::fleet::PageInfo {
        has_next_page,
        has_previous_page: after,
        start_cursor: edges.first().map(|(c, _)| c.clone()),
        end_cursor: edges.last().map(|(c, _)| c.clone()),
    }
}
