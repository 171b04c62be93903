//! Push, the provider-independent parts: what each provider's answer means
//! ([`errors`]), how large a payload may be ([`budget`]), and Web Push's payload
//! encryption and VAPID ([`webpush`]). Pure: the push function's adapters do the I/O.

pub mod budget;
pub mod errors;
pub mod webpush;
