//! `wot-alerts`: under construction (see the open issues).
