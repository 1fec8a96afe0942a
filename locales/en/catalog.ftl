# Catalog pages (apps, profiles).
