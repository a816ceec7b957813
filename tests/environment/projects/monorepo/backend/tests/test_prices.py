from app.prices import Price


def test_tax_is_added():
    assert Price(1000).with_tax(0.2) == Price(1200)


def test_zero_rate():
    assert Price(999).with_tax(0) == Price(999)
