"""mevbot"""
