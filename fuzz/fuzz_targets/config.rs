//! Any bytes as config.json: parsing and validation never panic, and a config
//! that parses survives rt's own JSON writer unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rt_spec::Purpose;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = rt_spec::parse(data) else {
        return;
    };
    let _ = rt_spec::validate(&spec, Purpose::Create);
    let _ = rt_spec::validate(&spec, Purpose::Any);
    let text = rt_spec::to_json(&spec);
    match rt_spec::parse(text.as_bytes()) {
        Ok(again) => assert_eq!(again, spec, "changed by a JSON round trip:\n{text}"),
        Err(e) => panic!("rt's own JSON does not parse: {e}\n{text}"),
    }
});
