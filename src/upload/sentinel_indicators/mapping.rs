//! Result mapping for the Upload Indicators API. Its answers have the same shape as the STIX
//! objects API's (`200` + `errors[]` with `recordIndex` and `validationErrorMessages`, or
//! `errorMessages` as the live service spells it; ARM errors otherwise), so the mapping is
//! shared; this module names it for the target so each target keeps the same three parts.

pub use crate::upload::sentinel_stix::mapping::{map_success, permanent_code, permanent_message};

#[cfg(test)]
mod tests {
    use super::*;
    use ti_core::report::Code;

    #[test]
    fn the_openapi_spelling_maps_to_its_record() {
        let out = map_success(
            2,
            br#"{"errors":[{"recordIndex":1,"validationErrorMessages":["Invalid pattern"]}]}"#,
        );
        assert!(out[0].is_none());
        let f = out[1].as_ref().unwrap();
        assert_eq!(f.code, Code::RejectedByService);
        assert_eq!(f.messages, vec!["Invalid pattern"]);
    }
}
