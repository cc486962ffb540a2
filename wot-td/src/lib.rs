//! `wot-td`: under construction (see the open issues).
