// Tests start real processes through the harness the demo and benches use; one import gives
// them both.
@_exported import ProcessHarness
