"""anvil"""
