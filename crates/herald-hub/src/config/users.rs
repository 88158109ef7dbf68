//! The `[users]` section: what the server does for a user by itself.

use serde::Deserialize;

/// Personal channels (docs/operations.md, "Users").
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// The personal channel of user `U` is this prefix followed by `U`. Every protocol-mode
    /// connection with a user id is subscribed to its own at connect; no client may subscribe
    /// to, read or publish on another user's. Empty: no personal channels (and the prefix
    /// reserves nothing). Default `#`.
    pub personal_prefix: String,
}

impl Default for UsersConfig {
    fn default() -> Self {
        Self {
            personal_prefix: "#".into(),
        }
    }
}

impl UsersConfig {
    /// The personal channel of `user`; `None` for anonymous connections or when personal
    /// channels are off.
    pub fn personal_channel(&self, user: &str) -> Option<String> {
        (!self.personal_prefix.is_empty() && !user.is_empty())
            .then(|| format!("{}{user}", self.personal_prefix))
    }

    /// Whose personal channel `channel` is, if it is one.
    pub fn owner<'a>(&self, channel: &'a str) -> Option<&'a str> {
        if self.personal_prefix.is_empty() {
            return None;
        }
        channel
            .strip_prefix(self.personal_prefix.as_str())
            .filter(|user| !user.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_personal_channel_is_the_prefix_and_the_user_and_names_its_owner() {
        let users = UsersConfig::default();
        assert_eq!(users.personal_channel("ann").as_deref(), Some("#ann"));
        assert_eq!(users.owner("#ann"), Some("ann"));
        assert_eq!(users.owner("#"), None);
        assert_eq!(users.owner("news"), None);
        assert_eq!(users.personal_channel(""), None, "anonymous: none");
    }

    #[test]
    fn an_empty_prefix_turns_personal_channels_off() {
        let users = UsersConfig {
            personal_prefix: String::new(),
        };
        assert_eq!(users.personal_channel("ann"), None);
        assert_eq!(users.owner("ann"), None);
    }
}
