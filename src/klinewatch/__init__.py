"""klinewatch: a self-hosted crypto market-data system.

Layers (dependencies point inward): ``cli | api | web | scheduler`` -> ``services`` ->
``storage | exchanges | cache`` -> ``domain``. ``settings``, ``errors``, ``logs`` and
``clock`` form the shared kernel that any layer may import.
"""

__version__ = "0.1.0"
