import pytest

from tale_shared.answers import answers_match, extract_answer, is_correct, normalize_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so 5 + 7 = 12. [[12]]", "12"),
        ("first [[3]] then corrected: [[ 4 ]]", "4"),
        (r"The answer is \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        (r"\boxed{x^{2}+1}", "x^{2}+1"),
        ("48 / 2 = 24\n#### 72", "72"),
        ("The final answer is $1,250.", "1,250"),
        ("She has 3 cats and 4 dogs, 7 pets", "7"),
        ("no numbers here", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("72.0", "72"),
        ("$1,200.00", "1200"),
        ("50%", "50"),
        ("0.50", "0.5"),
        ("3/4", "0.75"),
        (r"\frac{3}{4}", "0.75"),
        ("18 dollars", "18"),
        ("-7", "-7"),
    ],
)
def test_normalize_answer(value, expected):
    assert normalize_answer(value) == expected


def test_is_correct_compares_numbers_not_strings():
    assert is_correct("Total: [[72.0]]", "72")
    assert is_correct("It costs $1,200.", "1200")
    assert not is_correct("[[71]]", "72")
    assert not is_correct("I don't know", "72")


def test_latex_answers_go_through_math_verify():
    assert answers_match(r"\frac{1}{2}", "0.5")
    assert answers_match(r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})")
    assert not answers_match(r"\frac{1}{3}", "0.5")
    assert is_correct(r"so \boxed{\sqrt{2}}", r"\sqrt{2}")
