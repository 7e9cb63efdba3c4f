import pytest

from reason_classifier.language import chinese_script, default_detector


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The support team never answered my emails", "en"),
        ("Der Support antwortet nie", "de"),
        ("Nie korzystam z aplikacji", "pl"),
        ("trop cher pour nous", "fr"),
        ("价格太高了，性价比很低", "zh-Hans"),
        ("客服態度很差，問題一直沒有處理", "zh-Hant"),
        ("搵客服搵極都搵唔到", "zh-Hant"),
        ("很卡", "zh"),
        ("asdf", None),
        ("😀", None),
    ],
)
def test_detects_the_language_or_says_nothing(text, language):
    assert default_detector().detect(text) == language


def test_chinese_script_counts_script_specific_characters():
    assert chinese_script("这个太贵了") == "zh-Hans"
    assert chinese_script("這個太貴了") == "zh-Hant"
    assert chinese_script("很少用") == "zh"
