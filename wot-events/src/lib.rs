//! `wot-events`: under construction (see the open issues).
