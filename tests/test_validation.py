"""cnnkit.validation.check_multiple: every size it accepts fits the rule, every size it refuses
does not, and the sizes its message proposes are accepted."""

import re

import pytest

from cnnkit.validation import check_multiple

RULES = [dict(multiple=32), dict(multiple=16, offset=12, smallest=188), dict(multiple=8, offset=3)]


@pytest.mark.parametrize("rule", RULES)
def test_accepts_exactly_the_sizes_of_the_rule_and_proposes_accepted_ones(rule):
    multiple, offset = rule["multiple"], rule.get("offset", 0)
    smallest = rule.get("smallest", multiple)
    least = min(d for d in range(smallest, 700) if (d - offset) % multiple == 0)
    accepted = 0
    for dim in range(1, 700):
        fits = dim >= smallest and (dim - offset) % multiple == 0
        if fits:
            check_multiple("net", (dim, None, 3), multiple, "why", offset=offset,
                           smallest=rule.get("smallest"))
            accepted += 1
            continue
        with pytest.raises(ValueError, match=rf"got {dim}xNone\. .*e\.g\. {dim} to ") as error:
            check_multiple("net", (dim, None, 3), multiple, "why", offset=offset,
                           smallest=rule.get("smallest"))
        proposed = [int(s) for s in re.search(r"to ([\d or]+)\.", str(error.value)).group(1)
                    .split(" or ")]
        assert 1 <= len(proposed) <= 2 and all(abs(s - dim) < multiple or s == least
                                                for s in proposed), (dim, proposed)
        for size in proposed:  # what it proposes, it accepts
            check_multiple("net", (size, size, 3), multiple, "why", offset=offset,
                           smallest=rule.get("smallest"))
    assert accepted == len([d for d in range(smallest, 700) if (d - offset) % multiple == 0])


def test_the_message_names_the_network_the_rule_the_reason_and_the_hint():
    with pytest.raises(ValueError) as error:
        check_multiple("unet", (572, 100, 1), 16, "four poolings", offset=12, smallest=188,
                       hint="Or pad.")
    assert str(error.value) == (
        "unet needs a height and width of 16k + 12 pixels, at least 188 (four poolings); got "
        "572x100. Resize or pad the images, e.g. 100 to 188. Or pad.")
    with pytest.raises(ValueError, match=r"divisible by 32 \(strides\); got 100x96\. .*100 to "
                                         r"96 or 128\.$"):
        check_multiple("fcn", (100, 96, 3), 32, "strides")
