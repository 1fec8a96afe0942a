# People and organisation pages (users, authorities, schools, classes, carts).
