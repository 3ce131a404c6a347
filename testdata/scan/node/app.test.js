const app = require('./server');
app.listen(0); // test code
