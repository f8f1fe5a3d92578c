//! Invitation tokens: a signed, expiring offer from a member to one invitee, carrying the
//! context key wrapped to the invitee and the addresses to reach the context by.
//!
//! Encoding (borsh, fixed-width fields little-endian):
//!
//! ```text
//! version u8 | context [u8; 32] | app [u8; 32] | inviter [u8; 32] | invitee [u8; 32] | role u8
//! | invitation_id [u8; 16] | expires_at_ms u64
//! | bootstrap: count u32, then per address: length u32 | UTF-8 bytes
//! | wrapped_key (see crate::seal::WrappedKey, 108 bytes) | signature [u8; 64]
//! ```
//!
//! Text form: [`TEXT_PREFIX`] followed by the lowercase hex of those bytes.

use super::context_key::ContextKey;
use super::hex;
use super::wrap::{unwrap_key, wrap_key, UnwrapError, WrappedKey};
use crate::identity::{Keypair, Signature};
use crate::ids::{AuthorKey, ContextId};
use crate::membership::Role;
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::VerifyingKey;

/// The only invitation format this build reads and writes.
pub const INVITATION_VERSION: u8 = 2;
/// Bootstrap addresses one invitation may carry.
pub const MAX_BOOTSTRAP_ADDRESSES: usize = 8;
/// Bytes one bootstrap address may take.
pub const MAX_BOOTSTRAP_ADDRESS_BYTES: usize = 256;
/// Bytes an encoded invitation may take; the largest valid one fits (checked at compile time).
pub const MAX_INVITATION_BYTES: usize = 4096;
/// What every invitation's text form starts with; the digit is [`INVITATION_VERSION`].
pub const TEXT_PREFIX: &str = "rhz-invite-2:";
/// Bytes an invitation's text form may take: the prefix and the hex of the largest encoding.
pub const MAX_INVITATION_TEXT_BYTES: usize = TEXT_PREFIX.len() + 2 * MAX_INVITATION_BYTES;

/// The text prefix of every version, to tell a newer invitation from a string that is none.
const TEXT_FAMILY: &str = "rhz-invite-";
const LARGEST_ENCODING: usize = 1
    + 4 * 32
    + 1
    + 16
    + 8
    + 4
    + MAX_BOOTSTRAP_ADDRESSES * (4 + MAX_BOOTSTRAP_ADDRESS_BYTES)
    + WrappedKey::ENCODED_LEN
    + 64;
const _: () = assert!(LARGEST_ENCODING <= MAX_INVITATION_BYTES);

/// Hashes an invitation's fields into the digest that is signed.
const DIGEST_DOMAIN: &str = "rhizome 2026-11 invitation digest v1";
/// Prefixes the signed digest, so an invitation signature can never pass for a delta signature
/// (whose message has another prefix and another length) or the other way round.
const SIGNATURE_DOMAIN: &[u8] = b"rhizome 2026-11 invitation signature v1";

/// What an inviter offers, before the key is wrapped and the whole is signed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InvitationTerms {
    /// The context the invitee is invited to.
    pub context: ContextId,
    /// The context's app, opaque here (the runtime's app id): the joiner must run the same
    /// module, and the context id alone does not name it.
    pub app: [u8; 32],
    /// The only key that can accept the invitation.
    pub invitee: AuthorKey,
    /// The role the invitee gets.
    pub role: Role,
    /// Names this invitation, so it is accepted once; the driver draws it at random.
    pub invitation_id: [u8; 16],
    /// From this time on (milliseconds since the Unix epoch) the invitation is expired.
    pub expires_at_ms: u64,
    /// Addresses (multiaddrs) of peers of the context: at most [`MAX_BOOTSTRAP_ADDRESSES`] of
    /// at most [`MAX_BOOTSTRAP_ADDRESS_BYTES`] each.
    pub bootstrap: Vec<String>,
}

/// An invitation's signed fields.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Invitation {
    /// The format, [`INVITATION_VERSION`]; first, so a reader knows the layout of the rest.
    pub version: u8,
    /// The context invited to.
    pub context: ContextId,
    /// The context's app (opaque: the runtime's app id).
    pub app: [u8; 32],
    /// Who signed it and wrapped the key.
    pub inviter: AuthorKey,
    /// The only key that can accept it.
    pub invitee: AuthorKey,
    /// The role granted.
    pub role: Role,
    /// Names the invitation for replay checks.
    pub invitation_id: [u8; 16],
    /// Expiry, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Addresses of peers of the context.
    pub bootstrap: Vec<String>,
    /// The context key, wrapped from the inviter to the invitee.
    pub wrapped_key: WrappedKey,
}

/// An invitation with the inviter's signature over all of its fields.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct SignedInvitation {
    /// The signed fields.
    pub invitation: Invitation,
    /// Ed25519 by `invitation.inviter` over the domain-separated digest of `invitation`.
    pub signature: Signature,
}

/// What accepting an invitation yields.
#[derive(Debug)]
pub struct AcceptedInvitation {
    /// The context joined.
    pub context: ContextId,
    /// The context's app (opaque: the runtime's app id).
    pub app: [u8; 32],
    /// Who invited.
    pub inviter: AuthorKey,
    /// The role granted.
    pub role: Role,
    /// The context key, unwrapped.
    pub key: ContextKey,
    /// Addresses of peers of the context.
    pub bootstrap: Vec<String>,
    /// The invitation's id, for the caller to record as used.
    pub invitation_id: [u8; 16],
}

/// Why an invitation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    /// It does not decode, or breaks a bound of the format.
    #[error("malformed invitation: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// It is larger than any valid invitation; refused before decoding.
    #[error("invitation of {bytes} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size (of the text, or of the bytes).
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// It is of a format version this build does not read.
    #[error("invitation version {version} is not supported")]
    UnsupportedVersion {
        /// The version it names.
        version: u8,
    },
    /// The signature does not verify under the inviter key.
    #[error("invitation signature does not verify under the inviter key")]
    Forged,
    /// It expired.
    #[error("invitation expired at {expired_at_ms} ms, it is now {now_ms} ms")]
    Expired {
        /// When it expired.
        expired_at_ms: u64,
        /// The time it was presented at.
        now_ms: u64,
    },
    /// It is addressed to another key.
    #[error("invitation is addressed to another key")]
    WrongInvitee,
    /// It is for another context than the one expected.
    #[error("invitation is for another context")]
    WrongContext,
    /// Its id was already used.
    #[error("invitation was already used")]
    Replayed,
    /// The wrapped context key does not open.
    #[error("invitation's context key does not unwrap: {0}")]
    KeyUnwrap(UnwrapError),
}

impl InvitationError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Forged => "forged",
            Self::Expired { .. } => "expired",
            Self::WrongInvitee => "wrong_invitee",
            Self::WrongContext => "wrong_context",
            Self::Replayed => "replayed",
            Self::KeyUnwrap(_) => "key_unwrap",
        }
    }
}

impl Invitation {
    /// Wraps `key` to the invitee and signs the invitation. Refuses bootstrap lists over the
    /// bounds and an invitee key that cannot receive a wrapped key, as
    /// [`InvitationError::Malformed`]: the invitation would be.
    pub fn issue(
        inviter: &Keypair,
        terms: InvitationTerms,
        key: &ContextKey,
    ) -> Result<SignedInvitation, InvitationError> {
        let wrapped_key = wrap_key(inviter, &terms.invitee, &terms.context, key)
            .map_err(|_| InvitationError::Malformed { reason: "invitee key cannot receive a wrapped key" })?;
        let invitation = Self {
            version: INVITATION_VERSION,
            context: terms.context,
            app: terms.app,
            inviter: inviter.author_key(),
            invitee: terms.invitee,
            role: terms.role,
            invitation_id: terms.invitation_id,
            expires_at_ms: terms.expires_at_ms,
            bootstrap: terms.bootstrap,
            wrapped_key,
        };
        invitation.check_shape()?;
        invitation.sign(inviter)
    }

    /// Signs as `inviter`, which must be `self.inviter` (private, so nothing else can sign).
    fn sign(self, inviter: &Keypair) -> Result<SignedInvitation, InvitationError> {
        let signature = inviter.sign_raw(&self.signing_message()?);
        Ok(SignedInvitation { invitation: self, signature })
    }

    /// The bounds of the format, checked before anything costlier.
    fn check_shape(&self) -> Result<(), InvitationError> {
        if self.version != INVITATION_VERSION {
            return Err(InvitationError::UnsupportedVersion { version: self.version });
        }
        if self.bootstrap.len() > MAX_BOOTSTRAP_ADDRESSES {
            return Err(InvitationError::Malformed { reason: "too many bootstrap addresses" });
        }
        if self.bootstrap.iter().any(|address| address.len() > MAX_BOOTSTRAP_ADDRESS_BYTES) {
            return Err(InvitationError::Malformed { reason: "bootstrap address too long" });
        }
        if self.wrapped_key.recipient != self.invitee {
            return Err(InvitationError::Malformed { reason: "wrapped key is not addressed to the invitee" });
        }
        Ok(())
    }

    fn signing_message(&self) -> Result<[u8; SIGNATURE_DOMAIN.len() + 32], InvitationError> {
        let mut hasher = blake3::Hasher::new_derive_key(DIGEST_DOMAIN);
        // Hashing cannot fail; borsh refuses only collections over u32::MAX entries, which a
        // shape-checked invitation never has.
        borsh::to_writer(&mut hasher, self)
            .map_err(|_| InvitationError::Malformed { reason: "fields cannot be encoded" })?;
        let mut message = [0u8; SIGNATURE_DOMAIN.len() + 32];
        message[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
        message[SIGNATURE_DOMAIN.len()..].copy_from_slice(hasher.finalize().as_bytes());
        Ok(message)
    }
}

impl SignedInvitation {
    /// The borsh encoding described in the [module docs](self).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding into a Vec fails only for collections over u32::MAX entries, which no
        // invitation in memory has.
        borsh::to_vec(self).expect("encoding an invitation never fails")
    }

    /// Decodes an encoding and checks the format's bounds (not the signature: see
    /// [`Self::verify`]). The size is checked before anything is decoded.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvitationError> {
        if bytes.len() > MAX_INVITATION_BYTES {
            return Err(InvitationError::TooLarge { bytes: bytes.len(), max: MAX_INVITATION_BYTES });
        }
        // The version comes first so that a newer layout is named as such, not as malformed.
        match bytes.first() {
            None => return Err(InvitationError::Malformed { reason: "empty" }),
            Some(&version) if version != INVITATION_VERSION => {
                return Err(InvitationError::UnsupportedVersion { version });
            }
            Some(_) => {}
        }
        let signed: Self =
            borsh::from_slice(bytes).map_err(|_| InvitationError::Malformed { reason: "not a valid encoding" })?;
        signed.invitation.check_shape()?;
        Ok(signed)
    }

    /// The printable form: [`TEXT_PREFIX`] and the hex of [`Self::to_bytes`].
    pub fn to_text(&self) -> String {
        let mut text = String::from(TEXT_PREFIX);
        text.push_str(&hex::encode(&self.to_bytes()));
        text
    }

    /// Reads [`Self::to_text`]'s form, ignoring whitespace around it (as pasting adds). The
    /// length is checked before anything is decoded.
    pub fn from_text(text: &str) -> Result<Self, InvitationError> {
        if text.len() > MAX_INVITATION_TEXT_BYTES {
            return Err(InvitationError::TooLarge { bytes: text.len(), max: MAX_INVITATION_TEXT_BYTES });
        }
        let text = text.trim();
        let Some(rest) = text.strip_prefix(TEXT_FAMILY) else {
            return Err(InvitationError::Malformed { reason: "not an rhz-invite token" });
        };
        let Some((version, body)) = rest.split_once(':') else {
            return Err(InvitationError::Malformed { reason: "no version separator" });
        };
        if version != INVITATION_VERSION.to_string() {
            return Err(match version.parse::<u8>() {
                Ok(version) => InvitationError::UnsupportedVersion { version },
                Err(_) => InvitationError::Malformed { reason: "version is not a number" },
            });
        }
        let bytes = hex::decode(body).ok_or(InvitationError::Malformed { reason: "not hex" })?;
        Self::from_bytes(&bytes)
    }

    /// Checks the format's bounds and the inviter's signature.
    pub fn verify(&self) -> Result<(), InvitationError> {
        self.invitation.check_shape()?;
        let inviter =
            VerifyingKey::from_bytes(self.invitation.inviter.as_bytes()).map_err(|_| InvitationError::Forged)?;
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        inviter.verify_strict(&self.invitation.signing_message()?, &signature).map_err(|_| InvitationError::Forged)
    }

    /// Accepts the invitation as `invitee` at `now_ms`: checks the format, the signature, that
    /// it is addressed to `invitee` (and to `expected_context`, when given), that it has not
    /// expired and that `already_used` does not know its id, then unwraps the context key.
    ///
    /// Nothing is recorded here: the caller records the id as used once it acts on the answer.
    /// Nor is the inviter's authority checked: whether the inviter may admit members to the
    /// context is the membership rules' call, which the caller makes with the inviter returned.
    pub fn accept(
        &self,
        invitee: &Keypair,
        expected_context: Option<&ContextId>,
        now_ms: u64,
        already_used: impl Fn(&[u8; 16]) -> bool,
    ) -> Result<AcceptedInvitation, InvitationError> {
        // Everything below is only worth reporting about an invitation the inviter did sign.
        self.verify()?;
        let invitation = &self.invitation;
        if invitation.invitee != invitee.author_key() {
            return Err(InvitationError::WrongInvitee);
        }
        if expected_context.is_some_and(|expected| *expected != invitation.context) {
            return Err(InvitationError::WrongContext);
        }
        if now_ms >= invitation.expires_at_ms {
            return Err(InvitationError::Expired { expired_at_ms: invitation.expires_at_ms, now_ms });
        }
        if already_used(&invitation.invitation_id) {
            return Err(InvitationError::Replayed);
        }
        let key = unwrap_key(invitee, &invitation.inviter, &invitation.context, &invitation.wrapped_key)
            .map_err(InvitationError::KeyUnwrap)?;
        Ok(AcceptedInvitation {
            context: invitation.context,
            app: invitation.app,
            inviter: invitation.inviter,
            role: invitation.role,
            key,
            bootstrap: invitation.bootstrap.clone(),
            invitation_id: invitation.invitation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::KeyEpoch;

    const NOW: u64 = 1_700_000_000_000;

    fn alice() -> Keypair {
        Keypair::from_secret_bytes([1; 32])
    }

    fn bob() -> Keypair {
        Keypair::from_secret_bytes([2; 32])
    }

    fn context() -> ContextId {
        ContextId::hash_of(b"ctx")
    }

    fn key() -> ContextKey {
        ContextKey::new(KeyEpoch(2), [0x42; 32])
    }

    fn terms() -> InvitationTerms {
        InvitationTerms {
            context: context(),
            app: [7; 32],
            invitee: bob().author_key(),
            role: Role::Member,
            invitation_id: [9; 16],
            expires_at_ms: NOW + 60_000,
            bootstrap: vec!["/ip4/10.0.0.1/udp/4001/quic-v1".into(), "/dns4/seed.example/tcp/4001".into()],
        }
    }

    fn issued() -> SignedInvitation {
        Invitation::issue(&alice(), terms(), &key()).unwrap()
    }

    fn accept(signed: &SignedInvitation) -> Result<AcceptedInvitation, InvitationError> {
        signed.accept(&bob(), Some(&context()), NOW, |_| false)
    }

    /// Re-signs a tampered invitation as alice, so only the tampering is wrong.
    fn resigned(invitation: Invitation) -> SignedInvitation {
        invitation.sign(&alice()).unwrap()
    }

    fn hex_of(signed: &SignedInvitation) -> String {
        hex::encode(&signed.to_bytes())
    }

    #[test]
    fn round_trips_through_text_and_accepts() {
        let signed = issued();
        let text = signed.to_text();
        assert!(text.starts_with(TEXT_PREFIX));
        assert!(text[TEXT_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let read = SignedInvitation::from_text(&format!("  {text}\n")).unwrap();
        assert_eq!(read, signed);
        let accepted = accept(&read).unwrap();
        assert_eq!(accepted.context, context());
        assert_eq!(accepted.app, [7; 32]);
        assert_eq!(accepted.inviter, alice().author_key());
        assert_eq!(accepted.role, Role::Member);
        assert_eq!(accepted.key.secret_bytes(), key().secret_bytes());
        assert_eq!(accepted.key.epoch(), KeyEpoch(2));
        assert_eq!(accepted.bootstrap, terms().bootstrap);
        assert_eq!(accepted.invitation_id, [9; 16]);
        // No expected context is fine too; issuing is deterministic.
        assert!(read.accept(&bob(), None, NOW, |_| false).is_ok());
        assert_eq!(issued(), signed);
    }

    #[test]
    fn the_largest_invitation_fits_the_bounds() {
        let bootstrap = vec!["a".repeat(MAX_BOOTSTRAP_ADDRESS_BYTES); MAX_BOOTSTRAP_ADDRESSES];
        let signed = Invitation::issue(&alice(), InvitationTerms { bootstrap, ..terms() }, &key()).unwrap();
        assert_eq!(signed.to_bytes().len(), LARGEST_ENCODING);
        let text = signed.to_text();
        assert!(text.len() <= MAX_INVITATION_TEXT_BYTES);
        assert!(accept(&SignedInvitation::from_text(&text).unwrap()).is_ok());
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let malformed = |text: &str| match SignedInvitation::from_text(text) {
            Err(InvitationError::Malformed { reason }) => reason,
            other => panic!("{text:?} gave {other:?}"),
        };
        let body = hex_of(&issued());
        assert_eq!(malformed(""), "not an rhz-invite token");
        assert_eq!(malformed(&format!("rhz-invitation:{body}")), "not an rhz-invite token");
        assert_eq!(malformed(&format!("rhz-invite-2{body}")), "no version separator");
        assert_eq!(malformed("rhz-invite-"), "no version separator");
        assert_eq!(malformed("rhz-invite-x:00"), "version is not a number");
        assert_eq!(malformed(&format!("{TEXT_PREFIX}{}", &body[1..])), "not hex");
        assert_eq!(malformed(&format!("{TEXT_PREFIX}{}zz", &body[..body.len() - 2])), "not hex");
        assert_eq!(malformed(TEXT_PREFIX), "empty");
        assert_eq!(malformed(&format!("{TEXT_PREFIX}{body}00")), "not a valid encoding");
        assert_eq!(malformed(&format!("{TEXT_PREFIX}{}", &body[..body.len() - 2])), "not a valid encoding");

        // An unknown role byte (the role follows version, context, app, inviter and invitee).
        let mut bytes = issued().to_bytes();
        bytes[1 + 4 * 32] = 7;
        assert!(matches!(SignedInvitation::from_bytes(&bytes), Err(InvitationError::Malformed { .. })));

        // Bounds, even when signed.
        let mut invitation = issued().invitation;
        invitation.bootstrap = vec![String::new(); MAX_BOOTSTRAP_ADDRESSES + 1];
        let text = resigned(invitation).to_text();
        assert_eq!(malformed(&text), "too many bootstrap addresses");
        let mut invitation = issued().invitation;
        invitation.bootstrap = vec!["a".repeat(MAX_BOOTSTRAP_ADDRESS_BYTES + 1)];
        let signed = resigned(invitation);
        assert_eq!(malformed(&signed.to_text()), "bootstrap address too long");
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Malformed { reason: "bootstrap address too long" });
        let mut invitation = issued().invitation;
        invitation.wrapped_key.recipient = alice().author_key();
        assert_eq!(malformed(&resigned(invitation).to_text()), "wrapped key is not addressed to the invitee");
    }

    #[test]
    fn issuing_refuses_what_it_could_not_read_back() {
        let too_many = InvitationTerms { bootstrap: vec![String::new(); MAX_BOOTSTRAP_ADDRESSES + 1], ..terms() };
        assert!(matches!(Invitation::issue(&alice(), too_many, &key()), Err(InvitationError::Malformed { .. })));
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        let bad_invitee = InvitationTerms { invitee: AuthorKey::from_bytes(not_a_point), ..terms() };
        assert!(matches!(Invitation::issue(&alice(), bad_invitee, &key()), Err(InvitationError::Malformed { .. })));
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let text = "x".repeat(MAX_INVITATION_TEXT_BYTES + 1);
        assert_eq!(
            SignedInvitation::from_text(&text),
            Err(InvitationError::TooLarge { bytes: MAX_INVITATION_TEXT_BYTES + 1, max: MAX_INVITATION_TEXT_BYTES })
        );
        let bytes = vec![INVITATION_VERSION; MAX_INVITATION_BYTES + 1];
        assert_eq!(
            SignedInvitation::from_bytes(&bytes),
            Err(InvitationError::TooLarge { bytes: MAX_INVITATION_BYTES + 1, max: MAX_INVITATION_BYTES })
        );
    }

    #[test]
    fn other_versions_are_unsupported() {
        assert_eq!(
            SignedInvitation::from_text("rhz-invite-3:00ff"),
            Err(InvitationError::UnsupportedVersion { version: 3 })
        );
        assert_eq!(
            SignedInvitation::from_text("rhz-invite-1:00ff"),
            Err(InvitationError::UnsupportedVersion { version: 1 })
        );
        let mut bytes = issued().to_bytes();
        bytes[0] = 3;
        assert_eq!(SignedInvitation::from_bytes(&bytes), Err(InvitationError::UnsupportedVersion { version: 3 }));
        let mut invitation = issued().invitation;
        invitation.version = 0;
        assert_eq!(accept(&resigned(invitation)).unwrap_err(), InvitationError::UnsupportedVersion { version: 0 });
    }

    #[test]
    fn tampered_or_misattributed_invitations_are_forged() {
        // A member turning its own invitation into an admin one.
        let mut signed = issued();
        signed.invitation.role = Role::Admin;
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        let mut signed = issued();
        signed.invitation.expires_at_ms += 1;
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        // Another app, so the joiner would run another module on the context's deltas.
        let mut signed = issued();
        signed.invitation.app[0] ^= 1;
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        let mut signed = issued();
        signed.invitation.bootstrap.push("/ip4/6.6.6.6/tcp/1".into());
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        let mut signed = issued();
        signed.signature.0[0] ^= 1;
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        // Signed by someone else than the inviter it names.
        let carol = Keypair::from_secret_bytes([3; 32]);
        let signed = issued().invitation.sign(&carol).unwrap();
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        // An inviter that is no point at all.
        let mut signed = issued();
        signed.invitation.inviter = AuthorKey::from_bytes({
            let mut bytes = [0u8; 32];
            bytes[0] = 2;
            bytes
        });
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
        // A delta signature over the same digest bytes is no invitation signature.
        let message = issued().invitation.signing_message().unwrap();
        let digest = crate::ids::DeltaId::from_bytes(message[SIGNATURE_DOMAIN.len()..].try_into().unwrap());
        let signed = SignedInvitation { signature: alice().sign_delta(&digest), ..issued() };
        assert_eq!(accept(&signed).unwrap_err(), InvitationError::Forged);
    }

    #[test]
    fn expiry_is_checked_against_the_given_time() {
        let signed = issued();
        let expires = signed.invitation.expires_at_ms;
        assert!(signed.accept(&bob(), None, expires - 1, |_| false).is_ok());
        assert_eq!(
            signed.accept(&bob(), None, expires, |_| false).unwrap_err(),
            InvitationError::Expired { expired_at_ms: expires, now_ms: expires }
        );
        assert_eq!(
            signed.accept(&bob(), None, u64::MAX, |_| false).unwrap_err(),
            InvitationError::Expired { expired_at_ms: expires, now_ms: u64::MAX }
        );
    }

    #[test]
    fn only_the_invitee_may_accept() {
        let carol = Keypair::from_secret_bytes([3; 32]);
        assert_eq!(issued().accept(&carol, None, NOW, |_| false).unwrap_err(), InvitationError::WrongInvitee);
        assert_eq!(issued().accept(&alice(), None, NOW, |_| false).unwrap_err(), InvitationError::WrongInvitee);
    }

    #[test]
    fn another_context_is_refused() {
        let other = ContextId::hash_of(b"other");
        assert_eq!(issued().accept(&bob(), Some(&other), NOW, |_| false).unwrap_err(), InvitationError::WrongContext);
    }

    #[test]
    fn a_used_id_is_replayed() {
        let signed = issued();
        assert_eq!(signed.accept(&bob(), None, NOW, |id| *id == [9; 16]).unwrap_err(), InvitationError::Replayed);
        assert!(signed.accept(&bob(), None, NOW, |id| *id == [8; 16]).is_ok());
    }

    #[test]
    fn a_key_that_does_not_open_is_key_unwrap() {
        let mut invitation = issued().invitation;
        invitation.wrapped_key.ciphertext[0] ^= 1;
        assert_eq!(accept(&resigned(invitation)).unwrap_err(), InvitationError::KeyUnwrap(UnwrapError::Forged));
        // Wrapped for another context than the invitation names.
        let mut invitation = issued().invitation;
        invitation.wrapped_key =
            wrap_key(&alice(), &bob().author_key(), &ContextId::hash_of(b"other"), &key()).unwrap();
        assert_eq!(accept(&resigned(invitation)).unwrap_err(), InvitationError::KeyUnwrap(UnwrapError::Forged));
    }

    #[test]
    fn error_labels_are_stable() {
        let labels = [
            (InvitationError::Malformed { reason: "x" }, "malformed"),
            (InvitationError::TooLarge { bytes: 2, max: 1 }, "too_large"),
            (InvitationError::UnsupportedVersion { version: 2 }, "unsupported_version"),
            (InvitationError::Forged, "forged"),
            (InvitationError::Expired { expired_at_ms: 1, now_ms: 2 }, "expired"),
            (InvitationError::WrongInvitee, "wrong_invitee"),
            (InvitationError::WrongContext, "wrong_context"),
            (InvitationError::Replayed, "replayed"),
            (InvitationError::KeyUnwrap(UnwrapError::Forged), "key_unwrap"),
        ];
        for (error, label) in labels {
            assert_eq!(error.label(), label);
            assert!(!error.to_string().is_empty());
        }
    }
}
