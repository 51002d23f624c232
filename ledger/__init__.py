"""What moves: stamp cards, stamps, balance updates, point transactions, and their services."""
