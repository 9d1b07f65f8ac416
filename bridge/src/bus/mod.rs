//! The bus logic: what the bridge does with messages, independent of how
//! bytes reach it.

pub mod bloom;
pub mod matchrule;
