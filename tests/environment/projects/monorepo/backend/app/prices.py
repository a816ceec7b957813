import attrs


@attrs.define
class Price:
    cents: int

    def with_tax(self, rate: float) -> "Price":
        return Price(round(self.cents * (1 + rate)))
