/// A request that cannot be turned into domain types. Every variant names the
/// offending field and has a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("keyword must not be blank")]
    BlankKeyword,
    #[error("keyword must be at most {max} characters after trimming (got {got})")]
    KeywordTooLong { max: usize, got: usize },
    #[error("keyword must not contain control or format characters (U+{code_point:04X} at character {position})")]
    KeywordInvisibleCharacter { code_point: u32, position: usize },
    #[error("limit must be between {min} and {max} (got {got})")]
    LimitOutOfRange { min: u32, max: u32, got: i64 },
    #[error("{field} must be between {min} and {max} (got {got})")]
    ParameterOutOfRange {
        field: &'static str,
        min: u32,
        max: u32,
        got: i64,
    },
    #[error("subreddits: {name:?} (name {position}) is not a subreddit name: 2 to 21 letters, digits or underscores")]
    InvalidSubreddit { name: String, position: usize },
    #[error("subreddits: at most {max} names (got {got} distinct)")]
    TooManySubreddits { max: usize, got: usize },
    #[error("window must be one of hour, day, week, month, year, all (got {got:?})")]
    UnknownWindow { got: String },
}

impl InputError {
    pub fn code(&self) -> &'static str {
        match self {
            InputError::BlankKeyword
            | InputError::KeywordTooLong { .. }
            | InputError::KeywordInvisibleCharacter { .. } => "invalid_keyword",
            InputError::LimitOutOfRange { .. } => "invalid_limit",
            InputError::ParameterOutOfRange { .. } => "invalid_parameter",
            InputError::InvalidSubreddit { .. } | InputError::TooManySubreddits { .. } => {
                "invalid_subreddits"
            }
            InputError::UnknownWindow { .. } => "invalid_window",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            InputError::BlankKeyword
            | InputError::KeywordTooLong { .. }
            | InputError::KeywordInvisibleCharacter { .. } => "keyword",
            InputError::LimitOutOfRange { .. } => "limit",
            InputError::ParameterOutOfRange { field, .. } => field,
            InputError::InvalidSubreddit { .. } | InputError::TooManySubreddits { .. } => {
                "subreddits"
            }
            InputError::UnknownWindow { .. } => "window",
        }
    }
}
