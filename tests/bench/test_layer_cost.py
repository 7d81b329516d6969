"""benchmarks/layer_cost.py (issue 13) with a tiny budget: every segment output reaches the
driver (software GSO's: every frame cut from it), every frame input reaches delivery, nothing
leaks, and each gets a figure."""


def test_layer_cost_measures_output_and_input_per_frame():
    from benchmarks import layer_cost
    r = layer_cost.main(["--frames", "2000", "--rounds", "1"])
    assert r["sent"] == 2000 + 1000 and r["delivered"] == 2000 + 1000, r
    assert 0 < r["output_us"] < 1000 and 0 < r["input_us"] < 1000, r
    # software GSO: 20 warm-up outputs and 2000 // 44 measured ones, 44 frames each
    assert r["gso_sent"] == (20 + 2000 // 44) * 44 and 0 < r["gso_us"] < 1000, r
