//! What a request may cost, counted before it runs (`schema.limit_complexity`): a field costs 1
//! plus its children; a list field costs its children once per item it may return (its page
//! size, or the default when none is given), and a field that asks a store once per parent (not
//! batched) adds [`BACKEND_CALL`]. So `sims(first: 1000) { nodes { events(first: 1000) … } }` is
//! priced at a million nested items and refused before any query runs, naming the limit.

/// The cost of one backend query made per parent object.
pub const BACKEND_CALL: usize = 10;

/// The cost of a page of `first` (or `default`) items of `child` cost each, fetched with one
/// backend query per parent.
pub fn page_cost(first: Option<i32>, default: usize, child: usize) -> usize {
    let items = first.map_or(default, |n| usize::try_from(n).unwrap_or(0)).max(1);
    BACKEND_CALL.saturating_add(items.saturating_mul(child))
}

/// The cost of a field that makes one backend query per parent.
pub fn backend_call(child: usize) -> usize {
    BACKEND_CALL.saturating_add(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_multiply_their_children() {
        assert_eq!(page_cost(Some(100), 50, 5), 510);
        assert_eq!(page_cost(None, 50, 5), 260);
        assert_eq!(
            page_cost(Some(-3), 50, 5),
            15,
            "a bad size is answered by the resolver"
        );
        assert_eq!(page_cost(Some(i32::MAX), 50, usize::MAX), usize::MAX, "saturates");
    }
}
