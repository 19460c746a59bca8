//! SASL `XOAUTH2` (Google's and Microsoft's OAuth2 login for IMAP).

use crate::config::Secret;

/// The client's initial response: `user=USER ^A auth=Bearer TOKEN ^A ^A`,
/// before base64 (async-imap encodes what the authenticator returns).
pub fn xoauth2_initial_response(username: &str, access_token: &Secret) -> Vec<u8> {
    format!(
        "user={username}\x01auth=Bearer {}\x01\x01",
        access_token.expose()
    )
    .into_bytes()
}

/// Answers the server's first (empty) challenge with the initial response,
/// and any later challenge (a JSON error after a refused token) with an
/// empty response, as the protocol asks, so the server ends with `NO`.
pub(crate) struct Xoauth2Authenticator {
    initial_response: Option<Vec<u8>>,
}

impl Xoauth2Authenticator {
    pub(crate) fn new(username: &str, access_token: &Secret) -> Self {
        Xoauth2Authenticator {
            initial_response: Some(xoauth2_initial_response(username, access_token)),
        }
    }
}

impl async_imap::Authenticator for Xoauth2Authenticator {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.initial_response.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;
    use base64::Engine;

    /// The example from Google's XOAUTH2 protocol page.
    #[test]
    fn matches_the_published_example() {
        let token = Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
        let response = xoauth2_initial_response("someuser@example.com", &token);
        assert_eq!(
            response,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&response),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn answers_an_error_challenge_with_an_empty_response() {
        let mut authenticator = Xoauth2Authenticator::new("u@example.com", &Secret::new("t"));
        assert_eq!(
            authenticator.process(b""),
            b"user=u@example.com\x01auth=Bearer t\x01\x01"
        );
        assert_eq!(
            authenticator.process(br#"{"status":"401","schemes":"bearer"}"#),
            b""
        );
    }
}
