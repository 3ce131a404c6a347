const app = require('express')();
app.listen(8080); // web is public: allowed anywhere
app.listen(3000); // api is localhost_only: reported
app.listen(3000, 'localhost'); // allowed
