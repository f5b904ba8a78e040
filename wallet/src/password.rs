//! Where a key's password comes from: `--password-file`, `WALLET_PASSWORD`, or a hidden prompt.

use std::path::PathBuf;

use crate::error::{Result, WalletError};

/// The non-interactive password sources, in order of precedence.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    /// `--password-file`: its first line is the password.
    pub file: Option<PathBuf>,
    /// The value of `WALLET_PASSWORD`.
    pub env: Option<String>,
}

impl PasswordSource {
    /// The password, from the file, the environment, or a prompt on the terminal
    /// (asked twice when `confirm`, as when a new key file is written).
    pub fn read(&self, what: &str, confirm: bool) -> Result<String> {
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| WalletError::io("reading the password file", path, e))?;
            return Ok(first_line(&text).to_string());
        }
        if let Some(p) = &self.env {
            return Ok(p.clone());
        }
        let no_tty = |e: std::io::Error| {
            WalletError::Password(format!(
                "no password given: use --password-file or WALLET_PASSWORD (no terminal to prompt on: {e})"
            ))
        };
        let password =
            rpassword::prompt_password(format!("Password for {what}: ")).map_err(no_tty)?;
        if confirm {
            let again = rpassword::prompt_password("Repeat the password: ").map_err(no_tty)?;
            if again != password {
                return Err(WalletError::Password("the passwords do not match".into()));
            }
        }
        Ok(password)
    }
}

/// The first line of `text` without its line ending.
pub fn first_line(text: &str) -> &str {
    text.split('\n')
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\r\nignored\n").unwrap();
        let s = PasswordSource {
            file: Some(f),
            env: Some("env".into()),
        };
        assert_eq!(s.read("k", false).unwrap(), "s3cret");
        let s = PasswordSource {
            file: None,
            env: Some("env pw".into()),
        };
        assert_eq!(s.read("k", true).unwrap(), "env pw");
        let s = PasswordSource {
            file: Some(dir.path().join("absent")),
            env: None,
        };
        assert!(matches!(s.read("k", false), Err(WalletError::Io { .. })));
        assert_eq!(first_line(""), "");
    }
}
