//! Push, the provider-independent parts: what each provider's answer means
//! ([`errors`]), how large a payload may be ([`budget`]), Web Push's payload encryption
//! and VAPID ([`webpush`]), and the APNs provider token and FCM OAuth assertion with
//! their caches ([`credentials`]). Pure: the push function's adapters do the I/O.

pub mod budget;
pub mod credentials;
pub mod errors;
pub mod hygiene;
pub mod payload;
pub mod webpush;
