//! Wire types of each dialect Switchyard speaks: plain serde structs, no logic, no IO.
//!
//! - [`openai`] — the OpenAI / OpenRouter chat-completions family, which is also the
//!   gateway's canonical format (OpenRouter's extensions included).
//! - [`error`] — the OpenRouter error envelope every error response uses.
#![forbid(unsafe_code)]

pub mod error;
pub mod openai;
