//! One paging shape for every list: `?limit=` (default 50, at most 500) and `?cursor=`
//! (the `next_cursor` of the previous page); rows are ordered by their time-ordered id,
//! so a page is a keyset query the database answers with an index, however long the
//! list.

use serde::Serialize;

/// Default page size.
pub const DEFAULT: i64 = 50;
/// Largest page size.
pub const MAX: i64 = 500;

/// A checked page size.
pub fn limit(requested: Option<i64>) -> Result<i64, String> {
    let limit = requested.unwrap_or(DEFAULT);
    if (1..=MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(format!("between 1 and {MAX}"))
    }
}

/// One page: the rows and the cursor of the next page (none on the last).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each row turned into what the answer shows (names beside ids).
    pub fn try_map<U, E>(self, f: impl FnOnce(Vec<T>) -> Result<Vec<U>, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: f(self.items)?,
            next_cursor: self.next_cursor,
        })
    }

    /// Builds a page from `limit + 1` rows loaded in id order: the extra row only
    /// says that there is a next page.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> String) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern (with `ESCAPE '\'`).
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_another_follows() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert!(last.next_cursor.is_none());
        assert!(limit(Some(0)).is_err() && limit(Some(501)).is_err());
        assert_eq!(limit(None), Ok(50));
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }
}
