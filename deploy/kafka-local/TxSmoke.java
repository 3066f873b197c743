// Transactional smoke test for the local broker, run by smoke.sh with Java's single-file
// source launcher:  java -cp '<libs>/*' TxSmoke.java <bootstrap> <topic>
// Commits one transaction of 5 records, aborts one of 3, and checks that a read_committed
// consumer sees exactly the 5 committed records (so the transaction coordinator,
// __transaction_state and control records all work).
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxSmoke {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], topic = args[1];
    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "valora-smoke-tx");
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
      p.initTransactions();
      p.beginTransaction();
      for (int i = 0; i < 5; i++) p.send(new ProducerRecord<>(topic, "k" + i, "committed-" + i));
      p.commitTransaction();
      p.beginTransaction();
      for (int i = 0; i < 3; i++) p.send(new ProducerRecord<>(topic, "k" + i, "aborted-" + i));
      p.flush();
      p.abortTransaction();
    }
    Properties cp = new Properties();
    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    cp.put(ConsumerConfig.GROUP_ID_CONFIG, "valora-smoke-tx-reader");
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    int committed = 0, aborted = 0;
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
      c.subscribe(List.of(topic));
      long deadline = System.currentTimeMillis() + 30_000;
      while (committed < 5 && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
          if (r.value().startsWith("committed-")) committed++; else aborted++;
        }
      }
      // one more poll so that aborted records, if wrongly visible, would show up
      for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(1000))) {
        if (r.value().startsWith("committed-")) committed++; else aborted++;
      }
    }
    System.out.printf("transactional smoke: committed=%d aborted_visible=%d%n", committed, aborted);
    if (committed != 5 || aborted != 0) System.exit(1);
  }
}
