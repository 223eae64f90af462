//! What every hydra crate shares and none of them needs Burn for: file I/O that cannot harm
//! what is not hydra's ([`fsio`]) and the seeded random number generator ([`rng`]) behind
//! weight initialisation, data order, augmentation and synthetic scenes, and the containment
//! of panics in third-party decoders ([`contain`]), and a damaged file's text put on one line
//! for messages ([`text`]).
//!
//! No dependencies: the data crate reads and writes files and draws random numbers through
//! this crate without depending on the model.

pub mod contain;
pub mod fsio;
pub mod rng;
pub mod text;

pub use rng::SplitMix64;
