//! The node's identity on disk: one ed25519 secret key, sealed with a passphrase.
//!
//! The passphrase is stretched with argon2id into a 256-bit key, which seals the secret with
//! XChaCha20-Poly1305 (its 24-byte nonce is drawn at random, so reusing a passphrase is safe).
//! The public key is stored beside the seal, in the clear, and bound into it as associated data:
//! a file whose public key was swapped does not open. `--dev` stores the secret in plaintext,
//! and every start says so.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rhizome_core::Keypair;
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

/// The identity file in the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// The admin API token file in the data directory.
pub const TOKEN_FILE: &str = "api-token";

/// argon2id memory cost, in KiB (OWASP's 19 MiB recommendation).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id passes.
const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
const ARGON2_LANES: u32 = 1;
/// Largest cost a file may ask for, so a tampered file cannot make start-up allocate gigabytes.
const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest pass count a file may ask for.
const ARGON2_MAX_ITERATIONS: u32 = 64;

/// The identity file's contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum IdentityFile {
    /// Sealed with a passphrase.
    Sealed {
        version: u32,
        public_key: String,
        kdf: String,
        memory_kib: u32,
        iterations: u32,
        lanes: u32,
        salt: String,
        nonce: String,
        ciphertext: String,
    },
    /// Plaintext (`--dev` only).
    Plaintext { version: u32, public_key: String, secret_key: String },
}

/// An opened identity: the secret (for the libp2p key, which is the same ed25519 key) and the
/// core's keypair made from it.
pub struct Identity {
    secret: Zeroizing<[u8; 32]>,
    keypair: Keypair,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("public", &self.keypair.author_key()).finish_non_exhaustive()
    }
}

impl Identity {
    fn from_secret(secret: Zeroizing<[u8; 32]>) -> Self {
        let keypair = Keypair::from_secret_bytes(*secret);
        Self { secret, keypair }
    }

    /// The secret key bytes.
    pub fn secret(&self) -> [u8; 32] {
        *self.secret
    }

    /// The core's keypair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }
}

/// How the identity is protected.
#[derive(Debug, Clone)]
pub enum Protection {
    /// Sealed with this passphrase.
    Passphrase(Zeroizing<String>),
    /// Plaintext, for development.
    Dev,
}

/// Why the identity could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an identity file this version understands.
    #[error("identity file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The passphrase does not open the seal (or the file was tampered with).
    #[error("the passphrase does not open {path} (wrong passphrase, or the file was altered)")]
    WrongPassphrase {
        /// The file.
        path: String,
    },
    /// The file is sealed but no passphrase was given.
    #[error("{path} is sealed: give the passphrase with RHIZOME_PASSPHRASE or --passphrase-file")]
    PassphraseNeeded {
        /// The file.
        path: String,
    },
    /// The file is plaintext and the node was not started with `--dev`.
    #[error("{path} holds a plaintext key; start with --dev to use it, or re-create the data directory sealed")]
    PlaintextWithoutDev {
        /// The file.
        path: String,
    },
    /// The identity already exists.
    #[error("{path} already exists; refusing to overwrite an identity")]
    Exists {
        /// The file.
        path: String,
    },
    /// argon2 refused its parameters.
    #[error("key derivation: {0}")]
    Kdf(String),
}

/// Creates a new identity in `dir` (which must exist) and returns it.
pub fn create(dir: &Path, protection: &Protection) -> Result<Identity, IdentityError> {
    let path = dir.join(IDENTITY_FILE);
    if path.exists() {
        return Err(IdentityError::Exists { path: path.display().to_string() });
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(secret.as_mut());
    let identity = Identity::from_secret(secret.clone());
    let public_key = hex::encode(identity.keypair.author_key().as_bytes());
    let file = match protection {
        Protection::Dev => IdentityFile::Plaintext { version: 1, public_key, secret_key: hex::encode(secret.as_ref()) },
        Protection::Passphrase(passphrase) => {
            let mut salt = [0u8; 16];
            OsRng.fill_bytes(&mut salt);
            let mut nonce = [0u8; 24];
            OsRng.fill_bytes(&mut nonce);
            let key = derive_key(passphrase, &salt, ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES)?;
            let cipher = XChaCha20Poly1305::new(key.as_ref().into());
            let ciphertext = cipher
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_ref(), aad: public_key.as_bytes() })
                .map_err(|_| IdentityError::Kdf("sealing failed".to_owned()))?;
            IdentityFile::Sealed {
                version: 1,
                public_key,
                kdf: "argon2id".to_owned(),
                memory_kib: ARGON2_MEMORY_KIB,
                iterations: ARGON2_ITERATIONS,
                lanes: ARGON2_LANES,
                salt: hex::encode(salt),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            }
        }
    };
    let text = serde_json::to_string_pretty(&file)
        .map_err(|error| IdentityError::Malformed { path: path.display().to_string(), reason: error.to_string() })?;
    write_private(&path, text.as_bytes())
        .map_err(|source| IdentityError::Io { path: path.display().to_string(), source })?;
    Ok(identity)
}

/// Opens the identity in `dir`.
pub fn open(dir: &Path, passphrase: Option<&str>, dev: bool) -> Result<Identity, IdentityError> {
    let path = dir.join(IDENTITY_FILE);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| IdentityError::Io { path: shown.clone(), source })?;
    let malformed = |reason: &str| IdentityError::Malformed { path: shown.clone(), reason: reason.to_owned() };
    let file: IdentityFile = serde_json::from_str(&text).map_err(|error| malformed(&error.to_string()))?;
    let (public_key, secret) = match file {
        IdentityFile::Plaintext { version: 1, public_key, secret_key } => {
            if !dev {
                return Err(IdentityError::PlaintextWithoutDev { path: shown });
            }
            (public_key, Zeroizing::new(decode_fixed::<32>(&secret_key).ok_or_else(|| malformed("secret_key"))?))
        }
        IdentityFile::Sealed {
            version: 1,
            public_key,
            kdf,
            memory_kib,
            iterations,
            lanes,
            salt,
            nonce,
            ciphertext,
        } => {
            if kdf != "argon2id" {
                return Err(malformed("kdf must be argon2id"));
            }
            if memory_kib > ARGON2_MAX_MEMORY_KIB || iterations > ARGON2_MAX_ITERATIONS || lanes == 0 || lanes > 16 {
                return Err(malformed("argon2id cost out of range"));
            }
            let passphrase = passphrase.ok_or_else(|| IdentityError::PassphraseNeeded { path: shown.clone() })?;
            let salt = decode_fixed::<16>(&salt).ok_or_else(|| malformed("salt"))?;
            let nonce = decode_fixed::<24>(&nonce).ok_or_else(|| malformed("nonce"))?;
            let ciphertext = hex::decode(&ciphertext).map_err(|_| malformed("ciphertext"))?;
            let key = derive_key(passphrase, &salt, memory_kib, iterations, lanes)?;
            let cipher = XChaCha20Poly1305::new(key.as_ref().into());
            let opened = Zeroizing::new(
                cipher
                    .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: public_key.as_bytes() })
                    .map_err(|_| IdentityError::WrongPassphrase { path: shown.clone() })?,
            );
            let secret: [u8; 32] =
                opened.as_slice().try_into().map_err(|_| malformed("sealed secret is not 32 bytes"))?;
            (public_key, Zeroizing::new(secret))
        }
        _ => return Err(malformed("unsupported version")),
    };
    let identity = Identity::from_secret(secret);
    if hex::encode(identity.keypair.author_key().as_bytes()) != public_key {
        return Err(malformed("public_key does not match the secret"));
    }
    Ok(identity)
}

/// True if `dir` holds an identity.
pub fn exists(dir: &Path) -> bool {
    dir.join(IDENTITY_FILE).exists()
}

/// Reads the admin token in `dir`, creating a random one if there is none.
pub fn ensure_token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    let params = argon2::Params::new(memory_kib, iterations, lanes, Some(32))
        .map_err(|error| IdentityError::Kdf(error.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|error| IdentityError::Kdf(error.to_string()))?;
    Ok(key)
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Writes a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rhizome-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_sealed_identity_opens_with_its_passphrase_only() {
        let dir = temp_dir("sealed");
        let created = create(&dir, &Protection::Passphrase(Zeroizing::new("correct horse".into()))).expect("create");
        let text = std::fs::read_to_string(dir.join(IDENTITY_FILE)).expect("read");
        assert!(text.contains("\"sealed\"") && !text.contains("secret_key"), "no secret in the clear: {text}");
        let opened = open(&dir, Some("correct horse"), false).expect("open");
        assert_eq!(opened.keypair().author_key(), created.keypair().author_key());
        assert!(matches!(open(&dir, Some("wrong"), false), Err(IdentityError::WrongPassphrase { .. })));
        assert!(matches!(open(&dir, None, false), Err(IdentityError::PassphraseNeeded { .. })));
        assert!(matches!(create(&dir, &Protection::Dev), Err(IdentityError::Exists { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_swapped_public_key_does_not_open() {
        let dir = temp_dir("swapped");
        create(&dir, &Protection::Passphrase(Zeroizing::new("pw".into()))).expect("create");
        let path = dir.join(IDENTITY_FILE);
        let text = std::fs::read_to_string(&path).expect("read");
        let mut file: serde_json::Value = serde_json::from_str(&text).expect("json");
        file["public_key"] = serde_json::Value::String("00".repeat(32));
        std::fs::write(&path, file.to_string()).expect("write");
        assert!(matches!(open(&dir, Some("pw"), false), Err(IdentityError::WrongPassphrase { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_plaintext_identity_needs_dev_and_garbage_is_a_clear_error() {
        let dir = temp_dir("plain");
        let created = create(&dir, &Protection::Dev).expect("create");
        assert!(matches!(open(&dir, None, false), Err(IdentityError::PlaintextWithoutDev { .. })));
        assert_eq!(open(&dir, None, true).expect("dev open").keypair().author_key(), created.keypair().author_key());
        std::fs::write(dir.join(IDENTITY_FILE), "{\"kind\":\"sealed\"").expect("write");
        assert!(matches!(open(&dir, Some("x"), false), Err(IdentityError::Malformed { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_token_is_created_once_and_kept() {
        let dir = temp_dir("token");
        let first = ensure_token(&dir).expect("token");
        assert_eq!(first.len(), 64);
        assert_eq!(ensure_token(&dir).expect("token again"), first);
        std::fs::remove_dir_all(&dir).ok();
    }
}
