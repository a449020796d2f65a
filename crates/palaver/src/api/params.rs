//! Query parameters parsed once into types that can only hold valid values:
//! `limit` and `before`/`after` of `GET .../messages`, `size` of `GET /chat`.
//! (`since` is [`super::stream::ResumeAfter`].)

use super::error::ApiError;
use crate::store::Cursor;

/// `limit` of `GET /api/v1/rooms/{room}/messages`: 1-200, 50 when omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    pub fn parse(raw: Option<i64>) -> Result<Self, ApiError> {
        let limit = raw.unwrap_or(i64::from(Self::DEFAULT));
        match u32::try_from(limit) {
            Ok(limit @ 1..=Self::MAX) => Ok(Self(limit)),
            _ => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// `before` or `after` (not both) of `GET /api/v1/rooms/{room}/messages`,
/// each 0 or greater; neither is the newest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor(Cursor);

impl PageCursor {
    /// At most one of `before`, `after` and `around` (DESIGN §5b), each 0
    /// or greater.
    pub fn parse(
        before: Option<i64>,
        after: Option<i64>,
        around: Option<i64>,
    ) -> Result<Self, ApiError> {
        let invalid = |message: &str| ApiError::bad_request("invalid_cursor", message.to_owned());
        match (before, after, around) {
            (Some(seq), None, None) | (None, Some(seq), None) | (None, None, Some(seq))
                if seq < 0 =>
            {
                Err(invalid("before, after and around must be 0 or greater"))
            }
            (Some(seq), None, None) => Ok(Self(Cursor::Before(seq))),
            (None, Some(seq), None) => Ok(Self(Cursor::After(seq))),
            (None, None, Some(seq)) => Ok(Self(Cursor::Around(seq))),
            (None, None, None) => Ok(Self(Cursor::Latest)),
            _ => Err(invalid("give one of before, after and around")),
        }
    }

    pub fn get(self) -> Cursor {
        self.0
    }
}

/// `size` of `GET /chat`: 0-1000, 1000 when omitted (the seed's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSize(usize);

impl SeedSize {
    pub const MAX: usize = 1000;

    pub fn parse(raw: Option<i64>) -> Result<Self, ApiError> {
        match raw.map(usize::try_from) {
            None => Ok(Self(Self::MAX)),
            Some(Ok(size)) if size <= Self::MAX => Ok(Self(size)),
            Some(_) => Err(ApiError::bad_request(
                "invalid_size",
                format!("size must be between 0 and {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: ApiError) -> String {
        match error {
            ApiError::BadRequest { code, .. } => code.to_string(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn limit_defaults_to_50_and_is_bounded_to_1_through_200() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 50);
        assert_eq!(PageLimit::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(200)).unwrap().get(), 200);
        for bad in [0, -1, 201, i64::MAX, i64::MIN] {
            assert_eq!(
                code(PageLimit::parse(Some(bad)).unwrap_err()),
                "invalid_limit"
            );
        }
    }

    #[test]
    fn cursor_is_before_or_after_never_both_never_negative() {
        assert_eq!(
            PageCursor::parse(None, None, None).unwrap().get(),
            Cursor::Latest
        );
        assert_eq!(
            PageCursor::parse(Some(7), None, None).unwrap().get(),
            Cursor::Before(7)
        );
        assert_eq!(
            PageCursor::parse(None, Some(0), None).unwrap().get(),
            Cursor::After(0)
        );
        for (before, after) in [(Some(1), Some(2)), (Some(-1), None), (None, Some(-1))] {
            assert_eq!(
                code(PageCursor::parse(before, after, None).unwrap_err()),
                "invalid_cursor"
            );
        }
    }

    #[test]
    fn size_defaults_to_1000_and_is_bounded_to_0_through_1000() {
        assert_eq!(SeedSize::parse(None).unwrap().get(), 1000);
        assert_eq!(SeedSize::parse(Some(0)).unwrap().get(), 0);
        assert_eq!(SeedSize::parse(Some(1000)).unwrap().get(), 1000);
        for bad in [-1, 1001, i64::MAX, i64::MIN] {
            assert_eq!(
                code(SeedSize::parse(Some(bad)).unwrap_err()),
                "invalid_size"
            );
        }
    }
}
