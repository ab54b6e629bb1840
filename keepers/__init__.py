"""keepers"""
