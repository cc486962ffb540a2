//! `wot-sse`: under construction (see the open issues).
